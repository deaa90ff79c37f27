//! Reading Ethernet frames: which are DHCP (the simulated radio's `dhcp_silent` drops them),
//! and what addresses a frame shows (the lab equipment learns a board's address from its
//! frames and from the lease the lab's DHCP server gives it). Every reader takes any bytes
//! and answers `false`/`None` for what it cannot read; a fuzz target (`lab_frames`) feeds them
//! arbitrary frames.

/// Ethernet + IPv4 + UDP to or from port 67/68.
pub fn is_dhcp(frame: &[u8]) -> bool {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ip[9] != 17 || ip.len() < ihl + 8 {
        return false;
    }
    let udp = &ip[ihl..];
    let src = u16::from_be_bytes([udp[0], udp[1]]);
    let dst = u16::from_be_bytes([udp[2], udp[3]]);
    matches!((src, dst), (68, 67) | (67, 68) | (67, 67))
}

/// The sender's address a frame shows: an IPv4 packet's source, an ARP sender's address
/// (not 0.0.0.0: a probe, or a client before DHCP).
pub fn ipv4_sender(frame: &[u8]) -> Option<[u8; 4]> {
    let ethertype = frame.get(12..14)?;
    let addr: [u8; 4] = match ethertype {
        [0x08, 0x00] => frame.get(14 + 12..14 + 16)?.try_into().ok()?,
        [0x08, 0x06] => frame.get(14 + 14..14 + 18)?.try_into().ok()?,
        _ => return None,
    };
    (addr != [0; 4]).then_some(addr)
}

/// The address a DHCP server's ACK (to port 68) gives: BOOTP's `yiaddr`, when option 53 says
/// ACK.
pub fn dhcp_ack_address(frame: &[u8]) -> Option<[u8; 4]> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    if udp.get(0..4)? != [0, 67, 0, 68] {
        return None;
    }
    let bootp = udp.get(8..)?;
    // op 2: a reply; the options start after the 236-byte header and the magic cookie.
    if *bootp.first()? != 2 || bootp.get(236..240)? != [99, 130, 83, 99] {
        return None;
    }
    let yiaddr: [u8; 4] = bootp.get(16..20)?.try_into().ok()?;
    let mut options = bootp.get(240..)?;
    while let [code, rest @ ..] = options {
        match code {
            0 => options = rest,
            255 => return None,
            _ => {
                let (&len, rest) = rest.split_first()?;
                let value = rest.get(..usize::from(len))?;
                if *code == 53 {
                    return (value == [5] && yiaddr != [0; 4]).then_some(yiaddr);
                }
                options = rest.get(usize::from(len)..)?;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use rstest::rstest;

    fn frame(proto: u8, src: u16, dst: u16) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 14 + 20 + 8];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[34..36].copy_from_slice(&src.to_be_bytes());
        f[36..38].copy_from_slice(&dst.to_be_bytes());
        f
    }

    #[test]
    fn dhcp_frames_are_recognised() {
        assert!(is_dhcp(&frame(17, 68, 67)));
        assert!(is_dhcp(&frame(17, 67, 68)));
        assert!(!is_dhcp(&frame(17, 53, 5353)));
        assert!(!is_dhcp(&frame(6, 68, 67)));
        assert!(!is_dhcp(&frame(17, 68, 67)[..30]));
    }

    /// A DHCP reply frame from 10.77.0.1:67 to port 68 giving `yiaddr`, with `options`.
    fn dhcp_reply(yiaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut bootp = alloc::vec![0u8; 240];
        bootp[0] = 2;
        bootp[16..20].copy_from_slice(&yiaddr);
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(options);
        let mut ip = alloc::vec![0u8; 20];
        ip[0] = 0x45;
        ip[9] = 17;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0, 67, 0, 68, 0, 0, 0, 0]);
        f.extend_from_slice(&bootp);
        f
    }

    #[rstest]
    #[case::ack(&[53, 1, 5, 255], Some([10, 77, 0, 123]))]
    #[case::ack_after_padding_and_other_options(&[0, 1, 4, 255, 255, 255, 0, 53, 1, 5], Some([10, 77, 0, 123]))]
    #[case::offer(&[53, 1, 2, 255], None)]
    #[case::nak(&[53, 1, 6, 255], None)]
    #[case::no_type(&[255], None)]
    #[case::truncated_option(&[1, 200], None)]
    fn a_dhcp_ack_gives_the_board_address(#[case] options: &[u8], #[case] ip: Option<[u8; 4]>) {
        assert_eq!(dhcp_ack_address(&dhcp_reply([10, 77, 0, 123], options)), ip);
    }

    #[test]
    fn a_dhcp_ack_read_on_truncated_frames_never_panics() {
        let frame = dhcp_reply([10, 77, 0, 123], &[53, 1, 5, 255]);
        for len in 0..frame.len() {
            let _ = dhcp_ack_address(&frame[..len]);
        }
        assert_eq!(dhcp_ack_address(&dhcp_reply([0; 4], &[53, 1, 5, 255])), None, "no address");
    }
    #[rstest]
    #[case::ipv4(&[0x08, 0x00], 26, Some([10, 77, 0, 100]))]
    #[case::arp(&[0x08, 0x06], 28, Some([10, 77, 0, 100]))]
    #[case::ipv6(&[0x86, 0xdd], 26, None)]
    fn the_board_address_comes_from_its_frames(
        #[case] ethertype: &[u8],
        #[case] at: usize,
        #[case] ip: Option<[u8; 4]>,
    ) {
        let mut frame = alloc::vec![0u8; 64];
        frame[12..14].copy_from_slice(ethertype);
        frame[at..at + 4].copy_from_slice(&[10, 77, 0, 100]);
        assert_eq!(ipv4_sender(&frame), ip);
        frame[at..at + 4].copy_from_slice(&[0; 4]);
        assert_eq!(ipv4_sender(&frame), None, "0.0.0.0 is no address");
        assert_eq!(ipv4_sender(&frame[..20]), None, "too short");
    }
}
