//! Arbitrary Ethernet frames through the readers the radio equipment and the simulated radio
//! use (`gecko_net::frames`). Checked: nothing panics; an address read is never 0.0.0.0; a
//! DHCP ACK's address comes only from a frame that is DHCP.
#![no_main]

use gecko_net::frames::{dhcp_ack_address, ipv4_sender, is_dhcp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let dhcp = is_dhcp(frame);
    if let Some(address) = ipv4_sender(frame) {
        assert_ne!(address, [0; 4], "0.0.0.0 is no sender");
    }
    if let Some(address) = dhcp_ack_address(frame) {
        assert_ne!(address, [0; 4], "0.0.0.0 is no lease");
        assert!(dhcp, "a lease from a frame that is not DHCP: {frame:?}");
    }
});
