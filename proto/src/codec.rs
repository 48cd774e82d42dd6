//! The codec of every Vigie service: prost's, except that a message that does not decode is
//! the client's fault (`InvalidArgument`), not the server's (`Internal`, prost's default).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Encodes `T` and decodes `U` with prost.
#[derive(Debug)]
pub struct VigieCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for VigieCodec<T, U> {
    fn default() -> Self {
        VigieCodec {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for VigieCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = VigieDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        VigieDecoder { _type: PhantomData }
    }
}

#[derive(Debug)]
pub struct VigieDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for VigieDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|error| {
            let name = std::any::type_name::<U>()
                .rsplit("::")
                .next()
                .unwrap_or("message");
            Status::invalid_argument(format!("malformed {name}: {error}"))
        })
    }
}
