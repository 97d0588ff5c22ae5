/// Names of the activation tensors the int8 model quantises, shared by the float executor's
/// observer (calibration), the int8 compiler and the int8 executor. One place, so they agree.
///
/// - `input`: the image after preprocessing.
/// - a convolution or linear layer's output: the layer's checkpoint prefix (e.g.
///   `mobilevit.encoder.layer.2.conv_kxk`); with an activation other than ReLU/ReLU6, its input
///   is `<prefix>.preact` (the int8 code the 256-entry table reads).
/// - an inverted residual with a skip connection: the block prefix (the sum).
/// - a MobileViT block's concat buffer `<block>.concat`: the downsampling output and the
///   projection share it (one scale), so the concat costs nothing.
/// - transformer layer `<t>`: `<t>.ln1`, query/key/value prefixes, `<t>.context` (P·V),
///   the attention output dense prefix, `<t>.residual1`, `<t>.ln2`, the MLP prefixes, and `<t>`
///   (the layer output); attention probabilities are `<t>.probs` (fixed scale).
/// - `mobilevit.pooler`: the pooled vector; `classifier`: the logits (int32 accumulators in the
///   int8 model, dequantised).
/// - segmentation: ASPP's branches `segmentation_head.aspp.convs.0` … `.4` (the last is the
///   pooling branch upsampled; its pooled input is `asppPooled`) share the concat buffer
///   `asppConcat`; `segmentation_head.classifier` holds the logits at every pixel.
public enum TensorNames {
    public static let input = "input"
    public static let pooler = "mobilevit.pooler"
    /// The logits: the classifier's output, named as its layer.
    public static let logits = "classifier"
    /// DeepLabV3's image-pooling branch input (transformers' `convs.4.global_pool`).
    public static let asppPooled = "segmentation_head.aspp.convs.4.global_pool"
    /// The concat buffer of ASPP's five branches (one quantisation for all).
    public static let asppConcat = "segmentation_head.aspp.concat"

    public static func preact(_ layer: String) -> String { layer + ".preact" }
    public static func concat(_ block: MobileViTBlock) -> String { block.name + ".concat" }
    /// A MobileViT block's feature map as patch tokens (unfold) and back (fold): layout only, no
    /// quantisation of their own.
    public static func unfolded(_ block: MobileViTBlock) -> String { block.name + ".unfold" }
    public static func folded(_ block: MobileViTBlock) -> String { block.name + ".fold" }
    /// The last transformer layer's output, as transformers names it ([P, N, C]).
    public static func transformer(_ block: MobileViTBlock) -> String { block.name + ".transformer" }
    public static func ln1(_ t: TransformerLayer) -> String { t.name + ".ln1" }
    public static func ln2(_ t: TransformerLayer) -> String { t.name + ".ln2" }
    public static func context(_ t: TransformerLayer) -> String { t.name + ".context" }
    public static func residual1(_ t: TransformerLayer) -> String { t.name + ".residual1" }
    public static func probs(_ t: TransformerLayer) -> String { t.name + ".probs" }

    /// Whether a layer with this activation reads its output through a table (so has a .preact).
    public static func usesTable(_ a: Activation) -> Bool { a == .silu || a == .gelu }
}
