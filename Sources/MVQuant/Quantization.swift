import MVFormats
import MVModel

/// How `quantize(_:height:width:imageCount:options:image:)` calibrates and compiles.
public struct QuantizationOptions: Sendable {
    /// How each tensor's range is chosen from its histogram.
    public var method: CalibrationMethod = .recommended
    /// For `.percentile`: the percentile kept, in (50, 100].
    public var percentile: Double = 99.99
    /// Per-channel activation scales around depthwise convolutions and SiLU tables
    /// (`Network.perChannelTensors`); false quantises every activation per tensor.
    public var perChannelActivations = true
    /// GEMM weights rounded with error compensation against the calibration images' second
    /// moments (`ErrorCompensatingRounding`); false rounds every weight to nearest.
    public var errorCompensatingRounding = true
    /// Threads running the float executor over the images.
    public var threads = 1

    public init() {}
}

/// A quantised model, compiled and ready to write, with what calibration measured.
public struct QuantizationResult {
    /// The int8 model (`model.write(to:)` writes the `.mvq`) and the activations' quantisation.
    public let compiler: Int8Compiler
    /// E[x xᵀ] of every GEMM input (empty with round-to-nearest weights): the sensitivity study
    /// rounds its simulated weights against them.
    public let secondMoments: [String: [Double]]

    public var model: QuantizedModelBuilder { compiler.model }
    public var activations: [String: QuantParams] { compiler.activations }
}

/// Quantises a float checkpoint: runs the float executor over `imageCount` calibration images
/// (two passes: ranges, then histograms and second moments), picks every activation's range with
/// `options.method`, and compiles the int8 model. The one calibration pipeline: the CLI's
/// `calibrate` and the tests call it.
/// - Parameters:
///   - image: pixel values (NCHW float32 [1, C, H, W]) of calibration image `i`; called from
///     several threads.
///   - calibrationInfo: fields recorded in the model's `calibration` header beside the method,
///     image count, size and options.
///   - progress: image passes done, out of 2 · `imageCount`.
public func quantize(_ checkpoint: Checkpoint, height: Int, width: Int, imageCount: Int,
                     options: QuantizationOptions = QuantizationOptions(), calibrationInfo: [(String, JSON)] = [],
                     image: @escaping @Sendable (Int) throws -> [Float],
                     progress: (Int) -> Void = { _ in }) throws -> QuantizationResult {
    let calibrator = Calibrator(checkpoint: checkpoint, height: height, width: width, threads: options.threads,
                                secondMomentTensors: options.errorCompensatingRounding ? checkpoint.graph.network.gemmInputTensors : [],
                                perChannelTensors: options.perChannelActivations ? Set(checkpoint.graph.network.perChannelTensors) : [])
    let observers = try calibrator.collect(count: imageCount, image: image, progress: progress)
    var ranges: [String: (lo: Float, hi: Float)] = [:]
    var channelRanges: [String: [(lo: Float, hi: Float)]] = [:]
    var secondMoments: [String: [Double]] = [:]
    for (name, o) in observers {
        if let m = o.secondMoment { secondMoments[name] = m }
        ranges[name] = o.range(options.method, percentile: options.percentile)
        if options.perChannelActivations, let c = o.channelRanges(options.method, percentile: options.percentile) {
            channelRanges[name] = c
        }
    }
    let info = JSON.object([("method", .string(options.method.rawValue)), ("images", .number(Double(imageCount))),
                            ("per_channel_activations", .bool(options.perChannelActivations)),
                            ("weight_rounding", .string(options.errorCompensatingRounding ? "error-compensating" : "nearest")),
                            ("size", [.number(Double(height)), .number(Double(width))]),
                            ("percentile", .number(options.percentile))] + calibrationInfo)
    let compiler = try Int8Compiler(checkpoint: checkpoint, ranges: ranges, channelRanges: channelRanges,
                                    inputSecondMoments: secondMoments, calibration: info)
    return QuantizationResult(compiler: compiler, secondMoments: secondMoments)
}
