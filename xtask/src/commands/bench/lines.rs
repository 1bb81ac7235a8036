//! Lines of a byte stream (a serial port's socket, QEMU's stdout), each
//! stamped with the host's clock when its newline arrived.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Instant;

/// Reads `source` on a thread named `name` until EOF or an error and sends
/// every line (without `\r\n`) with the instant its end was read. The
/// thread ends when the stream ends or the receiver is dropped.
pub fn spawn_reader(
    source: impl Read + Send + 'static,
    name: &str,
) -> std::io::Result<mpsc::Receiver<(Instant, String)>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut r = BufReader::new(source);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let at = Instant::now();
                        if tx.send((at, clean(&buf))).is_err() {
                            return;
                        }
                    }
                }
            }
        })?;
    Ok(rx)
}

/// A console line as text: line ends and carriage returns dropped (the
/// kernel's serial console writes `\r\n`, and a `\r` may start a line).
pub fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\n', '\r'])
        .trim_start_matches('\r')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_arrive_in_order_with_rising_stamps() {
        let input: &[u8] = b"one\r\ntwo\n\rthree\npartial";
        let rx = spawn_reader(input, "test-reader").unwrap();
        let got: Vec<(Instant, String)> = rx.iter().collect();
        let text: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(text, ["one", "two", "three", "partial"]);
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(rx.recv_timeout(Duration::from_millis(10)).is_err());
    }
}
