//! The serial channel over a real pseudo-terminal, with a scripted module on the other end.

use gecko_hil::channel::serial::{SerialChannel, SerialSettings};
use gecko_hil::channel::{Channel, ChannelError, Request};
use nix::pty::openpty;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// Reads from the module side until `want` has arrived (a deadline, the last bytes shown).
fn read_until(module: &mut std::fs::File, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.windows(want.len()).any(|w| w == want) {
        assert!(
            Instant::now() < deadline,
            "never read {:?}; last seen {:?}",
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(&got)
        );
        let n = module.read(&mut buf).expect("read the command");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn log_lines_of_a_command_that_timed_out_go_with_the_next_reply() {
    let pty = openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&pty.slave).expect("slave name");
    // Keep the slave open so the master never sees a hang-up.
    let _slave: OwnedFd = pty.slave;
    let mut module = std::fs::File::from(pty.master);
    let mut port = SerialChannel::open(&SerialSettings {
        path,
        baud: 115_200,
        flow_control: serialport::FlowControl::None,
    })
    .expect("open the pty");

    let script = std::thread::spawn(move || {
        // The first command gets a log line and no response.
        read_until(&mut module, b"get wlan.network.status\r\n");
        module.write_all(b"L100017\r\n[Disassociated]\r\n").expect("write");
        // The second gets its response.
        read_until(&mut module, b"get wlan.network.status\r\n");
        module.write_all(b"R000003\r\n0\r\n").expect("write");
        module
    });
    let ask = |timeout| Request { line: "get wlan.network.status", data: None, timeout };
    let first = port.execute(&ask(Duration::from_millis(400)));
    assert!(matches!(first, Err(ChannelError::Timeout { .. })), "{first:?}");
    let second = port.execute(&ask(Duration::from_secs(10))).expect("a reply");
    let logs: Vec<&str> = second.logs.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(logs, ["[Disassociated]"], "the timed-out command's log line is kept");
    assert_eq!(second.text(), "0");
    script.join().expect("script");
}
