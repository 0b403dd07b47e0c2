//! The subset of TensorBoard's protocol buffers that an event file of scalars and text needs.
//!
//! Hand-written `prost` messages instead of generated code: no `protoc` and no build script for
//! five small messages. Field numbers follow `tensorboard/compat/proto/event.proto`,
//! `summary.proto`, `tensor.proto` and `tensor_shape.proto`; fields Regimen never writes are left
//! out, which protobuf allows (readers see them as unset).

/// `tensorboard.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
    /// Who wrote the file; set on the first event only.
    #[prost(message, optional, tag = "10")]
    pub source_metadata: Option<SourceMetadata>,
}

/// `Event.what`, the payload of an event.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum What {
    /// `brain.Event:2` on the first event of a file.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// A set of tagged values.
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorboard.SourceMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SourceMetadata {
    /// Name of the writer.
    #[prost(string, tag = "1")]
    pub writer: String,
}

/// `tensorboard.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorboard.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SummaryValue {
    /// The series this value belongs to.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin reads the series; needed on the first value of a tag that is not a plain scalar.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value. A oneof, so that a scalar 0.0 is still written (a plain proto3 float field that
    /// equals zero is omitted, and readers would see no value at all).
    #[prost(oneof = "ValueKind", tags = "2, 8")]
    pub value: Option<ValueKind>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum ValueKind {
    /// A scalar, as TensorBoard's scalar dashboard reads it.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// A tensor, here a string for the text plugin.
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorboard.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SummaryMetadata {
    /// The plugin that owns the series.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// `tensorboard.DataClass`.
    #[prost(int32, tag = "4")]
    pub data_class: i32,
}

/// `tensorboard.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PluginData {
    /// `text`, `scalars`...
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// Plugin-specific serialized settings; empty means version 0 for the text plugin.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `DataClass.DATA_CLASS_TENSOR`: what TensorBoard itself assigns to text series when it loads them.
pub(crate) const DATA_CLASS_TENSOR: i32 = 2;

/// `tensorboard.TensorProto`, for string tensors only.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TensorProto {
    /// `tensorboard.DataType`.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// The strings, row-major.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `DataType.DT_STRING`.
pub(crate) const DT_STRING: i32 = 7;

/// `tensorboard.TensorShapeProto` of rank 0: a scalar has no dimensions, so none are modelled.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TensorShapeProto {}
