//! (stub until the http branch lands)
use arrayvec::ArrayVec;
pub const MAX_HEAD_OUT: usize = 4096;
pub type HeadBuf = ArrayVec<u8, MAX_HEAD_OUT>;
#[derive(Debug)]
pub struct HeadTooLarge;
pub struct HeadWriter<'b> {
    buf: &'b mut HeadBuf,
}
impl<'b> HeadWriter<'b> {
    pub fn new(buf: &'b mut HeadBuf, _v: crate::http::Version, code: u16, date: &[u8; 29]) -> Self {
        buf.clear();
        let _ = buf.try_extend_from_slice(format!("HTTP/1.1 {code} X\r\nDate: ").as_bytes());
        let _ = buf.try_extend_from_slice(date);
        let _ = buf.try_extend_from_slice(b"\r\n");
        HeadWriter { buf }
    }
    pub fn header(&mut self, name: &str, value: &[u8]) {
        let _ = self.buf.try_extend_from_slice(name.as_bytes());
        let _ = self.buf.try_extend_from_slice(b": ");
        let _ = self.buf.try_extend_from_slice(value);
        let _ = self.buf.try_extend_from_slice(b"\r\n");
    }
    pub fn header_u64(&mut self, name: &str, v: u64) {
        self.header(name, v.to_string().as_bytes());
    }
    pub fn header_date(&mut self, name: &str, v: i64) {
        self.header(name, v.to_string().as_bytes());
    }
    pub fn finish(self) -> Result<usize, HeadTooLarge> {
        let _ = self.buf.try_extend_from_slice(b"\r\n");
        Ok(self.buf.len())
    }
}
