//! The protobuf messages of the service (package `tinker_public`, proto3),
//! written out with `prost` derives so the build needs no `protoc`.
//!
//! Only the messages this client sends or reads are here. Numeric arrays
//! travel as raw little-endian bytes inside `bytes` fields; the helpers at
//! the bottom pack and unpack them.

use std::collections::BTreeMap;

/// Element type of a tensor's raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DType {
    Unspecified = 0,
    Float32 = 1,
    Int64 = 2,
    Int32 = 3,
    Bfloat16 = 4,
}

/// Why a sampled sequence ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StopReasonProto {
    Stop = 0,
    Length = 1,
}

/// Body of `POST /api/v1/forward_backward`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardBackwardRequest {
    #[prost(string, tag = "1")]
    pub model_id: String,
    #[prost(int32, tag = "2")]
    pub seq_id: i32,
    #[prost(message, repeated, tag = "3")]
    pub data: Vec<Datum>,
    #[prost(string, tag = "4")]
    pub loss_fn: String,
    /// Legacy numeric options; the SDK fills it and `loss_fn_config_v2`.
    #[prost(btree_map = "string, double", tag = "5")]
    pub loss_fn_config: BTreeMap<String, f64>,
    #[prost(bool, tag = "6")]
    pub forward_only: bool,
    #[prost(btree_map = "string, message", tag = "7")]
    pub loss_fn_config_v2: BTreeMap<String, LossConfigValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LossConfigValue {
    #[prost(oneof = "loss_config_value::Value", tags = "1, 2")]
    pub value: Option<loss_config_value::Value>,
}

pub mod loss_config_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(double, tag = "1")]
        Number(f64),
        #[prost(string, tag = "2")]
        Text(String),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Datum {
    #[prost(message, repeated, tag = "1")]
    pub model_input: Vec<Chunk>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub loss_fn_inputs: BTreeMap<String, Tensor>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    #[prost(oneof = "chunk::Kind", tags = "1")]
    pub kind: Option<chunk::Kind>,
}

pub mod chunk {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        EncodedText(super::EncodedTextChunk),
    }
}

/// Token ids as int32 little-endian, 4 bytes each.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncodedTextChunk {
    #[prost(bytes = "vec", tag = "1")]
    pub tokens: Vec<u8>,
}

/// A dense tensor: row-major little-endian bytes, element type and shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tensor {
    #[prost(bytes = "vec", tag = "1")]
    pub dense: Vec<u8>,
    #[prost(enumeration = "DType", tag = "3")]
    pub dtype: i32,
    #[prost(int64, repeated, tag = "4")]
    pub shape: Vec<i64>,
}

/// Result of forward_backward.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardBackwardOutput {
    #[prost(string, tag = "1")]
    pub loss_fn_output_type: String,
    #[prost(message, repeated, tag = "2")]
    pub loss_fn_outputs: Vec<ArrayRecord>,
    #[prost(btree_map = "string, double", tag = "3")]
    pub metrics: BTreeMap<String, f64>,
}

/// Per-datum outputs, one batched tensor per output name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayRecord {
    #[prost(string, tag = "1")]
    pub type_tag: String,
    #[prost(btree_map = "string, message", tag = "2")]
    pub fields: BTreeMap<String, BatchedTensor>,
    #[prost(int64, tag = "3")]
    pub num_datums: i64,
}

/// Concatenated per-datum arrays; `offsets` are int64 LE byte offsets into
/// `data`, one more than the number of datums.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchedTensor {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub offsets: Vec<u8>,
    #[prost(enumeration = "DType", tag = "3")]
    pub dtype: i32,
    #[prost(int64, repeated, tag = "4")]
    pub trailing_shape: Vec<i64>,
}

/// Result of asample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SampleResponse {
    #[prost(message, repeated, tag = "1")]
    pub sequences: Vec<SampledSequence>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub prompt_logprobs: Option<Vec<u8>>,
    #[prost(int32, tag = "4")]
    pub prompt_cache_hit_tokens: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SampledSequence {
    #[prost(enumeration = "StopReasonProto", tag = "1")]
    pub stop_reason: i32,
    /// int32 LE.
    #[prost(bytes = "vec", tag = "2")]
    pub tokens: Vec<u8>,
    /// f32 LE, one per token.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub logprobs: Option<Vec<u8>>,
}

/// Packs values as little-endian bytes.
pub fn le_i32(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
    values.into_iter().flat_map(i32::to_le_bytes).collect()
}

pub fn le_i64(values: impl IntoIterator<Item = i64>) -> Vec<u8> {
    values.into_iter().flat_map(i64::to_le_bytes).collect()
}

pub fn le_f32(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// Splits little-endian bytes into `N`-byte words; `None` when the length
/// is not a multiple of `N`.
fn words<const N: usize>(bytes: &[u8]) -> Option<impl Iterator<Item = [u8; N]> + '_> {
    if !bytes.len().is_multiple_of(N) {
        return None;
    }
    Some(bytes.chunks_exact(N).map(|c| {
        let mut w = [0u8; N];
        w.copy_from_slice(c);
        w
    }))
}

pub fn read_i32(bytes: &[u8]) -> Option<Vec<i32>> {
    Some(words::<4>(bytes)?.map(i32::from_le_bytes).collect())
}

pub fn read_i64(bytes: &[u8]) -> Option<Vec<i64>> {
    Some(words::<8>(bytes)?.map(i64::from_le_bytes).collect())
}

pub fn read_f32(bytes: &[u8]) -> Option<Vec<f32>> {
    Some(words::<4>(bytes)?.map(f32::from_le_bytes).collect())
}

/// bfloat16 is the high half of an f32.
pub fn read_bf16(bytes: &[u8]) -> Option<Vec<f32>> {
    Some(
        words::<2>(bytes)?
            .map(|w| f32::from_bits(u32::from(u16::from_le_bytes(w)) << 16))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn ascii(s: &str) -> String {
        hex(s.as_bytes())
    }

    #[test]
    fn forward_backward_request_bytes() {
        // One datum reading token 7, target 9 (int64), model "ab", seq 3.
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "target_tokens".to_string(),
            Tensor {
                dense: le_i64([9]),
                dtype: DType::Int64 as i32,
                shape: vec![1],
            },
        );
        let req = ForwardBackwardRequest {
            model_id: "ab".into(),
            seq_id: 3,
            data: vec![Datum {
                model_input: vec![Chunk {
                    kind: Some(chunk::Kind::EncodedText(EncodedTextChunk {
                        tokens: le_i32([7]),
                    })),
                }],
                loss_fn_inputs: inputs,
            }],
            loss_fn: "ppo".into(),
            ..Default::default()
        };
        // Tensor: dense (tag 1, 8 bytes), dtype=2 (tag 3), packed shape [1] (tag 4).
        let tensor = "0a08 0900000000000000 1802 220101";
        // Map entry: key (tag 1) "target_tokens", value (tag 2) the tensor.
        let entry = format!("0a0d {} 120f {tensor}", ascii("target_tokens"));
        // Chunk: encoded_text (tag 1) { tokens (tag 1): 4 bytes }.
        let chunk = "0a06 0a04 07000000";
        let datum = format!("0a08 {chunk} 1220 {entry}");
        let expected = format!(
            "0a02 {} 1003 1a2c {datum} 2203 {}",
            ascii("ab"),
            ascii("ppo")
        );
        assert_eq!(hex(&req.encode_to_vec()), hex(&unhex(&expected)));
        assert_eq!(
            ForwardBackwardRequest::decode(&unhex(&expected)[..]).unwrap(),
            req
        );
    }

    #[test]
    fn loss_config_goes_to_both_maps() {
        let mut req = ForwardBackwardRequest::default();
        req.loss_fn_config.insert("beta".into(), 0.5);
        req.loss_fn_config_v2.insert(
            "beta".into(),
            LossConfigValue {
                value: Some(loss_config_value::Value::Number(0.5)),
            },
        );
        // 0.5 as f64 LE is 00..00e03f. Map<string,double>: key tag 1, value tag 2 (fixed64 = 0x11).
        let v1 = format!("2a0f 0a04 {} 11 000000000000e03f", ascii("beta"));
        // Map<string,message>: value tag 2 is a message whose field 1 is fixed64 (0x09).
        let v2 = format!("3a11 0a04 {} 1209 09 000000000000e03f", ascii("beta"));
        assert_eq!(
            hex(&req.encode_to_vec()),
            hex(&unhex(&format!("{v1} {v2}")))
        );
    }

    #[test]
    fn sample_response_decodes_from_bytes() {
        // Two tokens [5, 300], logprobs [-0.5, -2.0], stopped by length.
        let seq = "0801 1208 05000000 2c010000 1a08 000000bf 000000c0";
        let bytes = unhex(&format!("0a16 {seq}"));
        let resp = SampleResponse::decode(&bytes[..]).unwrap();
        assert_eq!(resp.sequences.len(), 1);
        let s = &resp.sequences[0];
        assert_eq!(s.stop_reason, StopReasonProto::Length as i32);
        assert_eq!(read_i32(&s.tokens).unwrap(), vec![5, 300]);
        assert_eq!(
            read_f32(s.logprobs.as_deref().unwrap()).unwrap(),
            vec![-0.5, -2.0]
        );
        assert_eq!(hex(&resp.encode_to_vec()), hex(&bytes));
        // stop_reason "stop" is the proto3 default and is left off the wire.
        let stop = SampledSequence {
            stop_reason: StopReasonProto::Stop as i32,
            tokens: le_i32([1]),
            logprobs: None,
        };
        assert_eq!(hex(&stop.encode_to_vec()), "120401000000");
    }

    #[test]
    fn forward_backward_output_decodes_from_bytes() {
        // One datum with logprobs [-1.0], metric "l:sum" = 2.0.
        let batched = "0a04 000080bf 1210 0000000000000000 0400000000000000 1801";
        let entry = format!("0a08 {} 121a {batched}", ascii("logprobs"));
        let record = format!("1226 {entry} 1801");
        let metric = format!("0a05 {} 11 0000000000000040", ascii("l:sum"));
        let bytes = unhex(&format!(
            "0a03 {} 122a {record} 1a10 {metric}",
            ascii("ArR")
        ));
        let out = ForwardBackwardOutput::decode(&bytes[..]).unwrap();
        assert_eq!(out.loss_fn_output_type, "ArR");
        assert_eq!(out.metrics.get("l:sum"), Some(&2.0));
        let rec = &out.loss_fn_outputs[0];
        assert_eq!(rec.num_datums, 1);
        let lp = &rec.fields["logprobs"];
        assert_eq!(lp.dtype, DType::Float32 as i32);
        assert_eq!(read_f32(&lp.data).unwrap(), vec![-1.0]);
        assert_eq!(read_i64(&lp.offsets).unwrap(), vec![0, 4]);
        assert_eq!(hex(&out.encode_to_vec()), hex(&bytes));
    }

    #[test]
    fn little_endian_helpers() {
        assert_eq!(le_i32([1, -1]), vec![1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(read_i32(&[1, 0, 0]), None);
        assert_eq!(read_bf16(&[0x80, 0x3f]).unwrap(), vec![1.0]);
        assert_eq!(read_i64(&le_i64([-5, 7])).unwrap(), vec![-5, 7]);
    }
}
