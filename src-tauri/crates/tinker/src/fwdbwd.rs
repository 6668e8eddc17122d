//! forward_backward on the wire: datums to the protobuf request, requests
//! split to the service's size limits, and the (protobuf or legacy JSON)
//! result back to per-datum tensors and merged metrics.

use std::collections::BTreeMap;
use std::ops::Range;

use prost::Message;
use serde::Deserialize;

use crate::datum::{Datum, Loss};
use crate::error::TinkerError;
use crate::futures::Outcome;
use crate::proto;

/// Values of one output tensor of one datum, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One output tensor of one datum.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub shape: Vec<usize>,
    pub values: TensorValues,
}

/// What forward_backward computed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ForwardBackwardOutput {
    /// The service's name for the output layout (after the last `:`).
    pub loss_fn_output_type: String,
    /// Loss metrics, keyed `name:reduction` (e.g. `loss:sum`).
    pub metrics: BTreeMap<String, f64>,
    /// Per datum, in input order: output name → tensor (normally
    /// `logprobs`, the trained model's log-probs of the targets).
    pub outputs: Vec<BTreeMap<String, OutputTensor>>,
}

impl ForwardBackwardOutput {
    /// The trained model's log-probs of datum `index`'s targets.
    pub fn logprobs(&self, index: usize) -> Option<&[f32]> {
        match &self.outputs.get(index)?.get("logprobs")?.values {
            TensorValues::F32(v) => Some(v),
            TensorValues::I64(_) => None,
        }
    }

    /// The loss, whatever its reduction (`loss:sum`, `loss:mean`, …).
    pub fn loss(&self) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| k.split(':').next() == Some("loss"))
            .map(|(_, v)| *v)
    }
}

/// The protobuf body for `data` with training seq `seq_id`. Numeric loss
/// options go to both config maps, as the SDK sends them.
pub(crate) fn encode_request(
    model_id: &str,
    seq_id: u64,
    data: &[Datum],
    loss: &Loss,
) -> Result<Vec<u8>, TinkerError> {
    let seq_id = i32::try_from(seq_id)
        .map_err(|_| TinkerError::InvalidInput(format!("seq_id {seq_id} exceeds int32")))?;
    let request = proto::ForwardBackwardRequest {
        model_id: model_id.to_string(),
        seq_id,
        data: data.iter().map(encode_datum).collect(),
        loss_fn: loss.function.as_str().to_string(),
        loss_fn_config: loss.config.clone(),
        forward_only: false,
        loss_fn_config_v2: loss
            .config
            .iter()
            .map(|(k, v)| {
                let value = proto::loss_config_value::Value::Number(*v);
                (k.clone(), proto::LossConfigValue { value: Some(value) })
            })
            .collect(),
    };
    Ok(request.encode_to_vec())
}

fn dense(dtype: proto::DType, len: usize, bytes: Vec<u8>) -> proto::Tensor {
    proto::Tensor {
        dense: bytes,
        dtype: dtype as i32,
        shape: vec![len as i64],
    }
}

fn encode_datum(datum: &Datum) -> proto::Datum {
    let t = datum.len();
    // Datum construction guarantees every id fits in int32.
    let tokens = proto::le_i32(datum.model_input().iter().map(|&v| v as i32));
    let mut inputs = BTreeMap::new();
    inputs.insert(
        "target_tokens".to_string(),
        dense(
            proto::DType::Int64,
            t,
            proto::le_i64(datum.target_tokens().iter().map(|&v| i64::from(v))),
        ),
    );
    inputs.insert(
        "logprobs".to_string(),
        dense(
            proto::DType::Float32,
            t,
            proto::le_f32(datum.logprobs().iter().copied()),
        ),
    );
    inputs.insert(
        "advantages".to_string(),
        dense(
            proto::DType::Float32,
            t,
            proto::le_f32(datum.advantages().iter().copied()),
        ),
    );
    proto::Datum {
        model_input: vec![proto::Chunk {
            kind: Some(proto::chunk::Kind::EncodedText(proto::EncodedTextChunk {
                tokens,
            })),
        }],
        loss_fn_inputs: inputs,
    }
}

/// Rough wire size of one datum (4 + 8 + 4 + 4 bytes per position).
pub(crate) fn datum_bytes(datum: &Datum) -> usize {
    datum.len() * 20 + 64
}

/// Splits datums (by their sizes) into consecutive requests of at most
/// `max_len` datums and about `max_bytes` bytes; a datum larger than the
/// budget travels alone.
pub(crate) fn chunk_ranges(sizes: &[usize], max_len: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let max_len = max_len.max(1);
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let full = i - start >= max_len || (i > start && bytes + size > max_bytes);
        if full {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

/// Joins the results of consecutive chunks: outputs concatenated, metrics
/// reduced by their suffix (`mean` weighted by datum count, `sum` added,
/// `min`/`max` kept; other reductions keep the first chunk's value).
pub(crate) fn merge(parts: Vec<ForwardBackwardOutput>) -> ForwardBackwardOutput {
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    let total: usize = parts.iter().map(|p| p.outputs.len()).sum();
    let mut merged = ForwardBackwardOutput::default();
    for part in parts {
        let n = part.outputs.len();
        if merged.loss_fn_output_type.is_empty() {
            merged.loss_fn_output_type = part.loss_fn_output_type.clone();
        }
        for (key, value) in part.metrics {
            let reduction = key.rsplit(':').next().unwrap_or("");
            let weight = if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            };
            match (merged.metrics.get_mut(&key), reduction) {
                (None, "mean") => {
                    merged.metrics.insert(key, value * weight);
                }
                (None, _) => {
                    merged.metrics.insert(key, value);
                }
                (Some(acc), "mean") => *acc += value * weight,
                (Some(acc), "sum") => *acc += value,
                (Some(acc), "min") => *acc = acc.min(value),
                (Some(acc), "max") => *acc = acc.max(value),
                (Some(_), _) => {}
            }
        }
        merged.outputs.extend(part.outputs);
    }
    merged
}

/// Decodes a finished forward_backward future.
pub(crate) fn decode_output(outcome: Outcome) -> Result<ForwardBackwardOutput, TinkerError> {
    match outcome {
        Outcome::Protobuf(bytes) => {
            let out = proto::ForwardBackwardOutput::decode(&bytes[..]).map_err(|e| {
                TinkerError::Protocol(format!(
                    "forward_backward result is not valid protobuf: {e}"
                ))
            })?;
            from_proto(out)
        }
        Outcome::Json(value) => from_json(value),
    }
}

fn short_type(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_string()
}

fn from_proto(out: proto::ForwardBackwardOutput) -> Result<ForwardBackwardOutput, TinkerError> {
    let mut outputs: Vec<BTreeMap<String, OutputTensor>> = Vec::new();
    for record in &out.loss_fn_outputs {
        let declared = usize::try_from(record.num_datums).unwrap_or(0);
        let mut per_datum: Vec<BTreeMap<String, OutputTensor>> = Vec::new();
        for (name, batched) in &record.fields {
            let tensors = split_batched(name, batched)?;
            if per_datum.is_empty() {
                per_datum.resize(tensors.len(), BTreeMap::new());
            }
            if tensors.len() != per_datum.len() {
                return Err(TinkerError::Protocol(format!(
                    "forward_backward output {name} has {} datums, others have {}",
                    tensors.len(),
                    per_datum.len()
                )));
            }
            for (slot, tensor) in per_datum.iter_mut().zip(tensors) {
                slot.insert(name.clone(), tensor);
            }
        }
        if declared != 0 && declared != per_datum.len() {
            return Err(TinkerError::Protocol(format!(
                "forward_backward record declares {declared} datums but carries {}",
                per_datum.len()
            )));
        }
        outputs.extend(per_datum);
    }
    Ok(ForwardBackwardOutput {
        loss_fn_output_type: short_type(&out.loss_fn_output_type),
        metrics: out.metrics,
        outputs,
    })
}

/// One batched field → one tensor per datum, using the byte offsets.
fn split_batched(name: &str, t: &proto::BatchedTensor) -> Result<Vec<OutputTensor>, TinkerError> {
    let bad = |why: &str| TinkerError::Protocol(format!("forward_backward output {name}: {why}"));
    let offsets = proto::read_i64(&t.offsets).ok_or_else(|| bad("offsets are not int64"))?;
    if offsets.first().copied().unwrap_or(0) != 0 {
        return Err(bad("offsets do not start at 0"));
    }
    let trailing: Vec<usize> = t
        .trailing_shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad("negative trailing shape")))
        .collect::<Result<_, _>>()?;
    let per_row: usize = trailing.iter().product::<usize>().max(1);
    let mut tensors = Vec::new();
    for pair in offsets.windows(2) {
        let (a, b) = (usize::try_from(pair[0]), usize::try_from(pair[1]));
        let (Ok(a), Ok(b)) = (a, b) else {
            return Err(bad("negative offset"));
        };
        if a > b || b > t.data.len() {
            return Err(bad("offsets out of range"));
        }
        let bytes = &t.data[a..b];
        let values = match proto::DType::try_from(t.dtype) {
            Ok(proto::DType::Float32) => {
                TensorValues::F32(proto::read_f32(bytes).ok_or_else(|| bad("ragged float32"))?)
            }
            Ok(proto::DType::Bfloat16) => {
                TensorValues::F32(proto::read_bf16(bytes).ok_or_else(|| bad("ragged bfloat16"))?)
            }
            Ok(proto::DType::Int64) => {
                TensorValues::I64(proto::read_i64(bytes).ok_or_else(|| bad("ragged int64"))?)
            }
            Ok(proto::DType::Int32) => TensorValues::I64(
                proto::read_i32(bytes)
                    .ok_or_else(|| bad("ragged int32"))?
                    .into_iter()
                    .map(i64::from)
                    .collect(),
            ),
            _ => return Err(bad(&format!("unknown dtype {}", t.dtype))),
        };
        let n = match &values {
            TensorValues::F32(v) => v.len(),
            TensorValues::I64(v) => v.len(),
        };
        if !n.is_multiple_of(per_row) {
            return Err(bad("size is not a multiple of the trailing shape"));
        }
        let mut shape = vec![n / per_row];
        shape.extend(&trailing);
        tensors.push(OutputTensor { shape, values });
    }
    Ok(tensors)
}

/// The legacy JSON result: `{"loss_fn_outputs": [{"logprobs": TensorData}], "metrics": …}`.
fn from_json(value: serde_json::Value) -> Result<ForwardBackwardOutput, TinkerError> {
    #[derive(Deserialize)]
    struct Json {
        #[serde(default)]
        loss_fn_output_type: String,
        #[serde(default)]
        loss_fn_outputs: Vec<BTreeMap<String, TensorData>>,
        #[serde(default)]
        metrics: BTreeMap<String, f64>,
    }
    #[derive(Deserialize)]
    struct TensorData {
        data: Vec<f64>,
        dtype: String,
        #[serde(default)]
        shape: Option<Vec<usize>>,
    }
    let json: Json = serde_json::from_value(value)
        .map_err(|e| TinkerError::Protocol(format!("forward_backward JSON result: {e}")))?;
    let outputs = json
        .loss_fn_outputs
        .into_iter()
        .map(|fields| {
            fields
                .into_iter()
                .map(|(name, t)| {
                    let shape = t.shape.unwrap_or_else(|| vec![t.data.len()]);
                    let values = match t.dtype.as_str() {
                        "int64" | "int32" => {
                            TensorValues::I64(t.data.iter().map(|&v| v as i64).collect())
                        }
                        _ => TensorValues::F32(t.data.iter().map(|&v| v as f32).collect()),
                    };
                    (name, OutputTensor { shape, values })
                })
                .collect()
        })
        .collect();
    Ok(ForwardBackwardOutput {
        loss_fn_output_type: short_type(&json.loss_fn_output_type),
        metrics: json.metrics,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::LossFn;

    #[test]
    fn request_carries_the_three_rl_inputs() {
        let d = Datum::new(vec![1, 2], vec![2, 3], vec![0.0, -0.5], vec![0.0, 1.5]).unwrap();
        let loss = Loss::new(LossFn::Ppo).with_clip(0.8, 1.28);
        let bytes = encode_request("m", 4, &[d], &loss).unwrap();
        let req = proto::ForwardBackwardRequest::decode(&bytes[..]).unwrap();
        assert_eq!(req.seq_id, 4);
        assert_eq!(req.loss_fn, "ppo");
        assert_eq!(req.loss_fn_config.get("clip_low_threshold"), Some(&0.8));
        assert_eq!(req.loss_fn_config_v2.len(), 2);
        let datum = &req.data[0];
        let Some(proto::chunk::Kind::EncodedText(text)) = &datum.model_input[0].kind else {
            panic!("no text chunk");
        };
        assert_eq!(proto::read_i32(&text.tokens).unwrap(), vec![1, 2]);
        let keys: Vec<&str> = datum.loss_fn_inputs.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["advantages", "logprobs", "target_tokens"]);
        let targets = &datum.loss_fn_inputs["target_tokens"];
        assert_eq!(targets.dtype, proto::DType::Int64 as i32);
        assert_eq!(targets.shape, vec![2]);
        assert_eq!(proto::read_i64(&targets.dense).unwrap(), vec![2, 3]);
        let adv = &datum.loss_fn_inputs["advantages"];
        assert_eq!(proto::read_f32(&adv.dense).unwrap(), vec![0.0, 1.5]);
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        assert_eq!(chunk_ranges(&[10, 10, 10], 2, 1000), vec![0..2, 2..3]);
        assert_eq!(chunk_ranges(&[10, 10, 10], 1024, 25), vec![0..2, 2..3]);
        assert_eq!(chunk_ranges(&[100, 10], 1024, 25), vec![0..1, 1..2]);
        assert_eq!(chunk_ranges(&[5; 4], 1024, 1000), vec![0..4]);
        assert!(chunk_ranges(&[], 4, 4).is_empty());
    }

    #[test]
    fn merged_metrics_follow_their_reduction() {
        let part = |n: usize, mean: f64, sum: f64, min: f64| ForwardBackwardOutput {
            loss_fn_output_type: "ArrayRecord".into(),
            metrics: [
                ("loss:mean", mean),
                ("loss:sum", sum),
                ("r:min", min),
                ("h:hash2", n as f64),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            outputs: vec![BTreeMap::new(); n],
        };
        let m = merge(vec![part(3, 1.0, 3.0, 0.5), part(1, 5.0, 5.0, 0.1)]);
        assert_eq!(m.outputs.len(), 4);
        assert_eq!(m.metrics["loss:mean"], 2.0);
        assert_eq!(m.metrics["loss:sum"], 8.0);
        assert_eq!(m.metrics["r:min"], 0.1);
        assert_eq!(m.metrics["h:hash2"], 3.0);
    }

    #[test]
    fn batched_outputs_split_per_datum() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "logprobs".to_string(),
            proto::BatchedTensor {
                data: proto::le_f32([-1.0, -2.0, -3.0]),
                offsets: proto::le_i64([0, 8, 12]),
                dtype: proto::DType::Float32 as i32,
                trailing_shape: vec![],
            },
        );
        let out = proto::ForwardBackwardOutput {
            loss_fn_output_type: "tinker:ArrayRecord".into(),
            loss_fn_outputs: vec![proto::ArrayRecord {
                type_tag: String::new(),
                fields,
                num_datums: 2,
            }],
            metrics: [("loss:sum".to_string(), 3.0)].into_iter().collect(),
        };
        let decoded = decode_output(Outcome::Protobuf(out.encode_to_vec())).unwrap();
        assert_eq!(decoded.loss_fn_output_type, "ArrayRecord");
        assert_eq!(decoded.logprobs(0), Some(&[-1.0, -2.0][..]));
        assert_eq!(decoded.logprobs(1), Some(&[-3.0][..]));
        assert_eq!(decoded.outputs[0]["logprobs"].shape, vec![2]);
        assert_eq!(decoded.loss(), Some(3.0));
    }

    #[test]
    fn broken_offsets_are_protocol_errors() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "logprobs".to_string(),
            proto::BatchedTensor {
                data: proto::le_f32([-1.0]),
                offsets: proto::le_i64([0, 8]),
                dtype: proto::DType::Float32 as i32,
                trailing_shape: vec![],
            },
        );
        let out = proto::ForwardBackwardOutput {
            loss_fn_outputs: vec![proto::ArrayRecord {
                type_tag: String::new(),
                fields,
                num_datums: 1,
            }],
            ..Default::default()
        };
        assert!(matches!(
            decode_output(Outcome::Protobuf(out.encode_to_vec())),
            Err(TinkerError::Protocol(_))
        ));
    }

    #[test]
    fn legacy_json_result_decodes() {
        let value = serde_json::json!({
            "loss_fn_output_type": "ArrayRecord",
            "loss_fn_outputs": [{"logprobs": {"data": [-0.5, -0.25], "dtype": "float32", "shape": [2]}}],
            "metrics": {"loss:sum": 1.0}
        });
        let out = decode_output(Outcome::Json(value)).unwrap();
        assert_eq!(out.logprobs(0), Some(&[-0.5, -0.25][..]));
        assert_eq!(out.loss(), Some(1.0));
    }
}
