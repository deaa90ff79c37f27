//! The driver against the register model: init, frames both ways, what a broken or hostile
//! controller reports, a full TX FIFO, the link; and the word codecs as tables.

use crate::model::Model;
use crate::*;
use rstest::rstest;
use std::vec::Vec;

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x03, 0x86];

fn ready() -> Lan9118<Model> {
    let mut dev = Lan9118::new(Model::new());
    assert_eq!(dev.init(MAC), Ok(()));
    dev
}

/// A frame to `dst` of `len` bytes with a recognisable payload.
fn frame(dst: [u8; 6], len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    f[..6].copy_from_slice(&dst);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

#[test]
fn init_programs_the_controller() {
    let mut dev = ready();
    let m = dev.registers();
    assert_eq!(m.mac_address(), MAC);
    let cr = m.mac_cr();
    assert_eq!(cr & (MAC_CR_TXEN | MAC_CR_RXEN), MAC_CR_TXEN | MAC_CR_RXEN, "{cr:#x}");
    assert_eq!(cr & MAC_CR_FDPX, MAC_CR_FDPX, "the model's PHY negotiates full duplex");
    assert_eq!(cr & (1 << 18), 0, "not promiscuous");
    assert_eq!(m.int_en(), INT_BASE);
    assert_eq!(m.tx_cfg(), TX_CFG_VALUE);
    assert!(!m.irq_line(), "nothing pending, the pin is active high");
}

#[test]
fn init_refuses_a_chip_that_fails_byte_test() {
    let mut m = Model::new();
    m.byte_test = 0x4321_8765;
    let mut dev = Lan9118::new(m);
    assert_eq!(dev.init(MAC), Err(InitError::ByteTest { found: 0x4321_8765 }));
}

#[test]
fn a_reset_that_never_finishes_is_reported_within_the_bound() {
    let mut m = Model::new();
    m.reset_stuck = true;
    let mut dev = Lan9118::new(m);
    assert_eq!(dev.init(MAC), Err(InitError::ResetTimeout));
    let reads = dev.registers().reads;
    assert!(reads <= POLL_LIMIT as usize + 4, "{reads} reads");
}

#[test]
fn a_mac_csr_that_stays_busy_is_reported() {
    let mut m = Model::new();
    m.csr_stuck = true;
    let mut dev = Lan9118::new(m);
    assert_eq!(dev.init(MAC), Err(InitError::MacBusy));
}

#[rstest]
#[case::header_only(14)]
#[case::odd(15)]
#[case::two_over(16)]
#[case::three_over(17)]
#[case::minimum(60)]
#[case::odd_61(61)]
#[case::arp(42)]
#[case::mtu(1514)]
#[case::vlan(1518)]
fn frames_come_through_whole(#[case] len: usize) {
    let mut dev = ready();
    let sent = frame(MAC, len);
    assert!(dev.registers().push_frame(&sent));
    let mut buf = [0u8; MAX_FRAME];
    assert_eq!(dev.receive(&mut buf), Some(len));
    assert_eq!(&buf[..len], &sent[..]);
    assert_eq!(dev.registers().rx_data_words(), 0, "FCS and padding read out");
    assert_eq!(dev.receive(&mut buf), None);
}

#[test]
fn frames_keep_their_order_and_the_filter_keeps_others_out() {
    let mut dev = ready();
    let a = frame(MAC, 61);
    let other = frame([0x02, 0, 0, 0, 0, 1], 60);
    let b = frame([0xff; 6], 42);
    let multicast = frame([0x01, 0x00, 0x5e, 0, 0, 0xfb], 90);
    for f in [&a, &other, &b, &multicast] {
        assert!(dev.registers().push_frame(f));
    }
    let mut buf = [0u8; MAX_FRAME];
    let mut got = Vec::new();
    while let Some(n) = dev.receive(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got, [a, b, multicast]);
    assert_eq!(dev.stats().rx_frames, 3);
}

/// A status word with this length (FCS included) and these flag bits.
fn status(len: usize, flags: u32) -> u32 {
    ((len as u32) << 16) | flags
}

#[rstest]
#[case::error_status(status(64, 1 << 15), DropReason::Error)]
#[case::crc(status(64, 1 << 1), DropReason::Error)]
#[case::runt(status(64, 1 << 11), DropReason::Error)]
#[case::filter_fail(status(64, 1 << 30), DropReason::Filtered)]
#[case::empty(status(0, 0), DropReason::TooShort)]
#[case::shorter_than_header(status(17, 0), DropReason::TooShort)]
#[case::longer_than_buffer(status(200, 0), DropReason::TooLong)]
#[case::longer_than_any_frame(status(1600, 0), DropReason::TooLong)]
fn bad_frames_are_dropped_and_the_next_one_is_whole(#[case] word: u32, #[case] reason: DropReason) {
    let mut dev = ready();
    assert_eq!(rx_verdict(&RxStatus::from_word(word), 128), RxVerdict::Drop(reason));
    // The bad frame's data words as its status claims them (what a consistent controller
    // holds).
    let words = RxStatus::from_word(word).words();
    assert!(dev.registers().push_raw(word, &std::vec![0xdead_beef; words]));
    let good = frame(MAC, 99);
    assert!(dev.registers().push_frame(&good));
    let mut buf = [0u8; 128];
    assert_eq!(dev.receive(&mut buf), Some(99));
    assert_eq!(&buf[..99], &good[..]);
    assert_eq!(dev.registers().rx_data_words(), 0);
    let s = dev.stats();
    assert_eq!(s.rx_errors + s.rx_bad_length, 1, "{s:?}");
}

#[test]
fn a_status_that_claims_more_than_the_fifo_holds_does_not_panic_or_loop() {
    let mut dev = ready();
    assert!(dev.registers().push_raw(status(0x3fff, 0), &[1, 2, 3]));
    assert!(dev.registers().push_raw(status(1000, 0), &[4]));
    let mut buf = [0u8; 2000];
    let before = dev.registers().reads;
    assert_eq!(dev.receive(&mut buf), Some(996), "the second frame fits: read with underrun");
    assert_eq!(dev.receive(&mut buf), None);
    assert!(dev.registers().reads - before < 400, "bounded: {} reads", dev.registers().reads);
}

#[test]
fn a_flood_of_bad_frames_is_handled_in_bounded_batches() {
    let mut dev = ready();
    for _ in 0..100 {
        assert!(dev.registers().push_raw(status(64, 1 << 15), &[0; 16]));
    }
    let mut buf = [0u8; MAX_FRAME];
    assert_eq!(dev.receive(&mut buf), None);
    assert_eq!(dev.registers().rx_frames_waiting(), 100 - RX_BATCH);
    while dev.registers().rx_frames_waiting() > 0 {
        assert_eq!(dev.receive(&mut buf), None);
    }
    assert_eq!(dev.stats().rx_errors, 100);
    assert_eq!(dev.registers().rx_data_words(), 0);
}

#[rstest]
#[case(1)]
#[case(14)]
#[case(42)]
#[case(61)]
#[case(1514)]
#[case(1518)]
fn transmitted_frames_arrive_as_given(#[case] len: usize) {
    let mut dev = ready();
    let f = frame([0xff; 6], len.max(14))[..len].to_vec();
    assert_eq!(dev.transmit(&f), Ok(()));
    assert_eq!(dev.transmit(&f), Ok(()));
    assert_eq!(dev.registers().sent, [f.clone(), f]);
    assert_eq!(dev.stats().tx_frames, 2);
    assert_eq!(dev.registers().tx_overruns, 0);
}

#[rstest]
#[case(0)]
#[case(MAX_FRAME + 1)]
#[case(4000)]
fn frames_of_impossible_length_are_refused(#[case] len: usize) {
    let mut dev = ready();
    assert_eq!(dev.transmit(&std::vec![0; len]), Err(TxError::BadLength(len)));
    assert!(dev.registers().sent.is_empty());
}

#[test]
fn a_full_tx_fifo_refuses_and_its_interrupt_says_when_there_is_room() {
    let mut dev = ready();
    dev.registers().set_tx_free(Some(64));
    assert!(!dev.tx_ready());
    assert_eq!(dev.transmit(&[0xff; 60]), Err(TxError::NoSpace));
    assert!(dev.registers().sent.is_empty());
    assert_eq!(dev.registers().tx_overruns, 0);
    dev.arm_tx_interrupt();
    assert!(!dev.registers().irq_line());
    dev.registers().set_tx_free(None);
    assert!(dev.registers().irq_line());
    let ev = dev.on_interrupt();
    assert_eq!(ev, Events { tx_space: true, ..Events::default() });
    assert!(!dev.registers().irq_line());
    assert_eq!(dev.registers().int_en(), INT_BASE, "one shot: disarmed");
    assert!(dev.tx_ready());
    assert_eq!(dev.transmit(&[0xff; 60]), Ok(()));
    assert_eq!(dev.stats().tx_no_space, 1);
}

#[test]
fn a_frame_raises_the_interrupt_and_on_interrupt_acknowledges_it() {
    let mut dev = ready();
    assert!(dev.registers().push_frame(&frame(MAC, 60)));
    assert!(dev.registers().irq_line());
    assert_eq!(dev.on_interrupt(), Events { rx: true, ..Events::default() });
    assert!(!dev.registers().irq_line());
    assert!(dev.on_interrupt().is_empty());
    assert_eq!(dev.stats().interrupts, 1, "only the call that found something counts");
    let mut buf = [0u8; MAX_FRAME];
    assert_eq!(dev.receive(&mut buf), Some(60));
}

#[test]
fn link_changes_raise_the_phy_interrupt() {
    let mut dev = ready();
    assert!(dev.link_up());
    dev.registers().set_link(false);
    assert!(dev.registers().irq_line());
    assert_eq!(dev.on_interrupt(), Events { link: true, ..Events::default() });
    assert!(!dev.registers().irq_line(), "the PHY's source register was read");
    assert!(!dev.link_up());
    dev.registers().set_link(true);
    assert!(dev.on_interrupt().link);
    assert!(dev.link_up());
}

#[rstest]
#[case::plain(0x0040_0000, 64, false, false, false)]
#[case::broadcast(0x002e_2000, 46, false, false, true)]
#[case::error(0x0040_8002, 64, true, false, false)]
#[case::filter_fail(0x4040_0000, 64, false, true, false)]
#[case::all_ones(0xffff_ffff, 0x3fff, true, true, true)]
fn rx_status_words_decode(
    #[case] word: u32,
    #[case] len: usize,
    #[case] error: bool,
    #[case] filter_fail: bool,
    #[case] broadcast: bool,
) {
    let s = RxStatus::from_word(word);
    assert_eq!((s.len, s.error, s.filter_fail, s.broadcast), (len, error, filter_fail, broadcast));
}

#[rstest]
#[case::header(18, 1518, RxVerdict::Deliver(14))]
#[case::fits_exactly(104, 100, RxVerdict::Deliver(100))]
#[case::one_too_long(105, 100, RxVerdict::Drop(DropReason::TooLong))]
#[case::beyond_max_frame(1523, 4096, RxVerdict::Drop(DropReason::TooLong))]
#[case::fcs_only(4, 1518, RxVerdict::Drop(DropReason::TooShort))]
fn verdicts_by_length(#[case] len: usize, #[case] buf: usize, #[case] want: RxVerdict) {
    assert_eq!(rx_verdict(&RxStatus::from_word(status(len, 0)), buf), want);
}

#[rstest]
#[case(42, 7, 0x0000_302a, 0x0007_002a, 52)]
#[case(1514, 0xffff, 0x0000_35ea, 0xffff_05ea, 1524)]
#[case(1, 1, 0x0000_3001, 0x0001_0001, 12)]
fn tx_commands_encode(
    #[case] len: usize,
    #[case] tag: u16,
    #[case] a: u32,
    #[case] b: u32,
    #[case] fifo: usize,
) {
    assert_eq!(tx_command_a(len), a);
    assert_eq!(tx_command_b(tag, len), b);
    assert_eq!(tx_fifo_bytes(len), fifo);
}

#[rstest]
#[case(&[1, 2, 3, 4, 5], 0, 0x0403_0201)]
#[case(&[1, 2, 3, 4, 5], 1, 0x0000_0005)]
#[case(&[1, 2, 3, 4, 5], 2, 0)]
fn frame_bytes_pack_little_endian(#[case] f: &[u8], #[case] i: usize, #[case] w: u32) {
    assert_eq!(pack_word(f, i), w);
}

#[rstest]
#[case(0x0007_0000, 7, false)]
#[case(0xbeef_8000, 0xbeef, true)]
fn tx_status_words_decode(#[case] word: u32, #[case] tag: u16, #[case] error: bool) {
    assert_eq!(TxStatus::from_word(word), TxStatus { tag, error });
}

#[test]
fn tx_errors_are_counted_from_the_status_fifo() {
    let mut dev = ready();
    assert_eq!(dev.transmit(&[0xff; 60]), Ok(()));
    dev.registers().tx_fail = true;
    assert_eq!(dev.transmit(&[0xff; 60]), Ok(()));
    assert_eq!(dev.transmit(&[0xff; 60]), Ok(()));
    // Each transmit first reads the statuses of the frames before it.
    assert_eq!(dev.stats().tx_errors, 1);
    assert_eq!(dev.transmit(&[0xff; 60]), Ok(()));
    assert_eq!(dev.stats().tx_errors, 2);
    assert_eq!(dev.registers().sent.len(), 4, "failures are counted, not retried");
}

#[test]
fn an_arp_request_round_trips_through_a_reply() {
    let req = arp::request(MAC, [10, 77, 0, 100], [10, 77, 0, 1]);
    assert_eq!(arp::parse_reply(&req), None, "a request is not a reply");
    let peer = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];
    let mut reply = req;
    reply[0..6].copy_from_slice(&MAC);
    reply[6..12].copy_from_slice(&peer);
    reply[21] = 2;
    reply[22..28].copy_from_slice(&peer);
    reply[28..32].copy_from_slice(&[10, 77, 0, 1]);
    reply[32..38].copy_from_slice(&MAC);
    reply[38..42].copy_from_slice(&[10, 77, 0, 100]);
    assert_eq!(arp::parse_reply(&reply), Some(arp::Reply { ip: [10, 77, 0, 1], mac: peer }));
    assert_eq!(arp::parse_reply(&reply[..41]), None);
    let mut ipv6 = reply;
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(arp::parse_reply(&ipv6), None);
}

mod adapter {
    use super::*;
    use crate::net::Shared;
    use embassy_net_driver::{Driver, LinkState, RxToken as _, TxToken as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn the_interrupt_wakes_the_receiver_and_frames_flow_both_ways() {
        let shared = Shared::new(Model::new());
        assert_eq!(shared.init(MAC), Ok(()));
        let mut dev = shared.device();
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(dev.receive(&mut cx).is_none());
        assert_eq!(dev.hardware_address(), embassy_net_driver::HardwareAddress::Ethernet(MAC));
        assert!(dev.link_state(&mut cx) == LinkState::Up);

        let f = frame(MAC, 77);
        assert!(shared.with(|d| d.registers().push_frame(&f)));
        assert!(shared.with(|d| d.registers().irq_line()));
        assert!(shared.on_interrupt().rx);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the receiver was woken");
        assert!(!shared.with(|d| d.registers().irq_line()));

        let Some((rx, tx)) = dev.receive(&mut cx) else { panic!("a frame is waiting") };
        let got = rx.consume(|b| b.to_vec());
        assert_eq!(got, f);
        tx.consume(60, |b| b.fill(0x5a));
        let Some(tx) = dev.transmit(&mut cx) else { panic!("the FIFO has room") };
        tx.consume(42, |b| b.fill(0x11));
        assert_eq!(
            shared.with(|d| d.registers().sent.clone()),
            [[0x5a; 60].to_vec(), [0x11; 42].to_vec()]
        );
    }

    #[test]
    fn a_full_fifo_parks_the_sender_until_the_interrupt() {
        let shared = Shared::new(Model::new());
        assert_eq!(shared.init(MAC), Ok(()));
        let mut dev = shared.device();
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        shared.with(|d| d.registers().set_tx_free(Some(100)));
        assert!(dev.transmit(&mut cx).is_none());
        assert!(shared.with(|d| d.registers().push_frame(&frame(MAC, 60))));
        assert!(dev.receive(&mut cx).is_none(), "no frame is taken without room to answer");
        shared.with(|d| d.registers().set_tx_free(None));
        let ev = shared.on_interrupt();
        assert!(ev.tx_space && ev.rx, "{ev:?}");
        assert!(count.0.load(Ordering::SeqCst) >= 1);
        assert!(dev.receive(&mut cx).is_some());
    }

    #[test]
    fn init_wakes_a_stack_that_saw_the_link_down() {
        let shared = Shared::new(Model::new());
        let mut dev = shared.device();
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(dev.link_state(&mut cx) == LinkState::Down);
        assert_eq!(shared.init(MAC), Ok(()));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(dev.link_state(&mut cx) == LinkState::Up);
    }

    #[test]
    fn a_failed_init_leaves_the_link_down() {
        let mut m = Model::new();
        m.byte_test = 0;
        let shared = Shared::new(m);
        assert_eq!(shared.init(MAC), Err(InitError::ByteTest { found: 0 }));
        assert!(!shared.link_up());
    }

    #[test]
    fn a_link_change_wakes_the_stack_and_shows_in_link_state() {
        let shared = Shared::new(Model::new());
        assert_eq!(shared.init(MAC), Ok(()));
        let mut dev = shared.device();
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(dev.link_state(&mut cx) == LinkState::Up);
        shared.with(|d| d.registers().set_link(false));
        assert!(shared.on_interrupt().link);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(dev.link_state(&mut cx) == LinkState::Down);
    }
}
