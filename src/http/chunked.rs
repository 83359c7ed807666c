//! (stub until the body branch lands)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    BadSize,
}
impl ChunkError {
    pub fn status(self) -> u16 {
        400
    }
}
#[derive(Default)]
pub struct ChunkedDecoder {
    done: bool,
}
impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, &'a [u8]), ChunkError> {
        let _ = input;
        self.done = true;
        Ok((0, &[]))
    }
    pub fn is_done(&self) -> bool {
        self.done
    }
}
