import MVFloat
import MVFormats
import MVImage
import MVInt8
import MVModel

// The embedding facade: open a model, make a session, run it on RGB bytes, pixel values or an
// image file, read the labels and the top K.
//
//     let model = try MVQModel(path: "model.mvq")            // or a float checkpoint directory
//     let session = try model.makeSession(threads: 2)
//     let logits = try session.run(imageFile: "cat.jpg")
//     for p in model.top(5, of: logits) { print(p.label, p.probability) }
//
// Concurrency: an `MVQModel` is immutable and `Sendable`: share it between threads. An
// `MVQSession` owns the executor's memory plans and thread pool and must be used by one thread at
// a time (it is not `Sendable`); make one session per thread. Logits are bit-identical to
// `mvquant infer` on the same input: the same executors run (`Int8Executor` for a `.mvq`,
// `FloatExecutor` for a checkpoint directory), with the same preprocessing.

/// The runtime's version (also `mvq_version()` in the C API).
public let mvquantRuntimeVersion = "0.1.0"

/// Why a call failed. `code` is the C API's error code (`MVQ_ERROR_…` in `mvquant.h`).
public struct MVQError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: Int32, Sendable {
        /// A bad argument: a null pointer, a size out of range, a buffer too small.
        case invalidArgument = 1
        /// The model path does not exist.
        case notFound = 2
        /// The model file or directory is damaged or not a MobileViT model.
        case badModel = 3
        /// The model is valid but not supported by this API (segmentation models).
        case unsupported = 4
        /// The input cannot be run: NaN or infinite pixel values, an image that cannot be decoded,
        /// an input size the network cannot take.
        case badInput = 5
        /// The model produced NaN or infinite logits (a float checkpoint whose weights overflow).
        case nonFiniteOutput = 6
        /// Anything else (should not happen).
        case `internal` = 7
    }

    public let code: Code
    /// One line, naming the file where there is one.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// One of the top-K classes.
public struct MVQPrediction: Sendable, Equatable {
    public var index: Int
    public var label: String
    /// Softmax probability over all classes.
    public var probability: Double
}

/// Limits, the same as the command line's.
public enum MVQLimits {
    /// The network input (after preprocessing, or pixel values given directly): sides 1…4096 and at
    /// most 4 megapixels.
    public static let maxInputSide = 4096
    public static let maxInputPixels = 2048 * 2048
    /// RGB images given as bytes: sides 1…16384 and at most 100 megapixels (the decoders' budget).
    public static let maxImageSide = 16384
    public static let maxImagePixels = ImageDecoder.defaultMaxPixels

    /// Throws `invalidArgument` unless `height`×`width` is a valid network input size.
    public static func checkInputSize(height: Int, width: Int) throws {
        guard height >= 1, width >= 1, height <= maxInputSide, width <= maxInputSide, height * width <= maxInputPixels else {
            throw MVQError(.invalidArgument, "input size \(height)×\(width) is outside the supported range (sides 1…\(maxInputSide), at most 4 megapixels)")
        }
    }

    /// Throws `invalidArgument` unless `width`×`height` is a valid RGB image size.
    public static func checkImageSize(width: Int, height: Int) throws {
        guard width >= 1, height >= 1, width <= maxImageSide, height <= maxImageSide, width * height <= maxImagePixels else {
            throw MVQError(.invalidArgument, "image size \(width)×\(height) is outside the supported range (sides 1…\(maxImageSide), at most 100 megapixels)")
        }
    }
}

/// A classification model, opened once and shared: a `.mvq` file runs in int8, a checkpoint
/// directory (`config.json`, `model.safetensors`, `preprocessor_config.json`) in float32.
/// Immutable; safe to use from any thread.
public final class MVQModel: Sendable {
    enum Kind: Sendable {
        case float(Checkpoint)
        case int8(QuantizedModel)
    }

    /// The path it was opened from.
    public let path: String
    /// Class names, index = logit index.
    public let labels: [String]
    /// The model's image pipeline (resize, centre crop, rescale, BGR), from its preprocessor config.
    public let preprocessor: Preprocessor
    /// Channels of the network input (3 for every MobileViT checkpoint).
    public let inputChannels: Int
    let kind: Kind

    /// Opens a `.mvq` file or a float checkpoint directory.
    /// - Throws: `MVQError` `.notFound`, `.badModel` (damaged or not a MobileViT model) or
    ///   `.unsupported` (a segmentation model).
    public init(path: String) throws {
        self.path = path
        let kind: Kind
        do {
            if FileSystem.isDirectory(path) {
                kind = .float(try Checkpoint.load(directory: path))
            } else {
                guard FileSystem.exists(path) else { throw MVQError(.notFound, "\(path): no such file or directory") }
                kind = .int8(try QuantizedModel(path: path))
            }
        } catch let e as MVQError {
            throw e
        } catch {
            throw MVQError(.badModel, MVQModel.oneLine(error, path: path))
        }
        self.kind = kind
        let graph: MobileViTGraph
        let config: JSON?
        switch kind {
        case let .float(c): (graph, config) = (c.graph, c.preprocessor)
        case let .int8(m): (graph, config) = (m.graph, m.preprocessor)
        }
        if graph.network.isDense {
            throw MVQError(.unsupported, "\(path) is a segmentation model: the runtime API runs classification models only (use `mvquant segment`)")
        }
        labels = graph.config.labels
        inputChannels = graph.network.inputChannels
        do {
            preprocessor = try config.map { try Preprocessor(config: $0) } ?? Preprocessor()
        } catch {
            throw MVQError(.badModel, MVQModel.oneLine(error, path: path))
        }
        guard inputChannels == 3 else {
            throw MVQError(.unsupported, "\(path): the network takes \(inputChannels) input channels; the runtime API runs RGB models only")
        }
        if preprocessor.doCenterCrop {
            do {
                try MVQLimits.checkInputSize(height: preprocessor.cropSize.height, width: preprocessor.cropSize.width)
            } catch let e as MVQError {
                throw MVQError(.badModel, "\(path): preprocessor crop size: \(e.message)")
            }
        }
    }

    /// Whether it runs in int8 (a `.mvq` file) rather than float32 (a checkpoint directory).
    public var isInt8: Bool {
        if case .int8 = kind { return true }
        return false
    }

    /// The input size the preprocessor gives every image when it centre-crops, else nil (the size
    /// then follows each image's aspect ratio).
    public var inputSize: (height: Int, width: Int)? {
        preprocessor.doCenterCrop ? (preprocessor.cropSize.height, preprocessor.cropSize.width) : nil
    }

    /// A session running this model with `threads` threads (int8 only; the float executor uses one).
    public func makeSession(threads: Int = 1) throws -> MVQSession {
        guard threads >= 1, threads <= 256 else { throw MVQError(.invalidArgument, "threads \(threads) is outside 1…256") }
        return try MVQSession(model: self, threads: threads)
    }

    /// The `k` most probable classes of `logits` (softmax in Double), most probable first; ties
    /// go to the lower index.
    public func top(_ k: Int, of logits: [Float]) -> [MVQPrediction] {
        MVQModel.top(k, of: logits).map { MVQPrediction(index: $0.index, label: $0.index < labels.count ? labels[$0.index] : "", probability: $0.probability) }
    }

    /// The `k` largest logits as (index, softmax probability), most probable first, ties to the
    /// lower index (the order `mvquant classify` prints).
    public static func top(_ k: Int, of logits: [Float]) -> [(index: Int, probability: Double)] {
        guard !logits.isEmpty, k > 0 else { return [] }
        let m = logits.max()!
        let e = logits.map { exp(Double($0 - m)) }
        let total = e.reduce(0, +)
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(k)
        return order.map { ($0, e[$0] / total) }
    }

    static func oneLine(_ error: Error, path: String) -> String {
        let text: String
        if let e = error as? InputError { text = e.message } else { text = String(describing: error) }
        let line = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? text
        return line.hasPrefix(path) ? line : "\(path): \(line)"
    }
}

/// Runs one model; owns the executor (memory plans per input size, a thread pool for int8).
/// Use it from one thread at a time; make one per thread to run in parallel. Not `Sendable`.
public final class MVQSession {
    public let model: MVQModel
    public let threads: Int
    private let float: FloatExecutor?
    private let int8: Int8Executor?
    /// Input sizes whose shapes were checked (h << 32 | w).
    private var checkedSizes: Set<Int> = []

    init(model: MVQModel, threads: Int) throws {
        self.model = model
        self.threads = threads
        switch model.kind {
        case let .float(c):
            float = FloatExecutor(checkpoint: c)
            int8 = nil
        case let .int8(m):
            float = nil
            do {
                int8 = try Int8Executor(model: m, threads: threads)
            } catch {
                throw MVQError(.badModel, MVQModel.oneLine(error, path: model.path))
            }
        }
    }

    /// Number of logits a run gives (the label count).
    public var logitCount: Int { model.labels.count }

    // MARK: pixel values

    /// Logits for NCHW float32 `pixel_values` [1, 3, height, width], as the model sees them (after
    /// preprocessing: for the default checkpoints BGR in [0, 1]).
    public func run(pixels: UnsafeBufferPointer<Float>, height: Int, width: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: logitCount)
        try out.withUnsafeMutableBufferPointer { try run(pixels: pixels, height: height, width: width, into: $0) }
        return out
    }

    /// The same into `logits` (at least `logitCount` entries; the first `logitCount` are written).
    public func run(pixels: UnsafeBufferPointer<Float>, height: Int, width: Int, into logits: UnsafeMutableBufferPointer<Float>) throws {
        try MVQLimits.checkInputSize(height: height, width: width)
        let c = model.inputChannels
        guard pixels.count == c * height * width, pixels.baseAddress != nil else {
            throw MVQError(.invalidArgument, "pixel values hold \(pixels.count) floats, expected \(c)×\(height)×\(width)")
        }
        guard logits.count >= logitCount, logits.baseAddress != nil else {
            throw MVQError(.invalidArgument, "logits buffer holds \(logits.count) floats, the model has \(logitCount) labels")
        }
        for v in pixels where !v.isFinite {
            throw MVQError(.badInput, "pixel values contain NaN or infinite values")
        }
        try checkShapes(height: height, width: width)
        let out = UnsafeMutableBufferPointer(rebasing: logits[0..<logitCount])
        if let int8 {
            int8.run(nchw: pixels, height: height, width: width, into: out)
        } else if let float {
            let values = float.run(nchw: pixels, height: height, width: width)
            _ = out.update(fromContentsOf: values)
        }
        guard out.allSatisfy(\.isFinite) else {
            throw MVQError(.nonFiniteOutput, "\(model.path): the model's outputs are not finite (NaN or infinity): its weights or preprocessing overflow float32")
        }
    }

    public func run(pixels: [Float], height: Int, width: Int) throws -> [Float] {
        try pixels.withUnsafeBufferPointer { try run(pixels: $0, height: height, width: width) }
    }

    /// The network refuses inputs too small for its strides: checked once per size.
    private func checkShapes(height: Int, width: Int) throws {
        let key = height << 32 | width
        if checkedSizes.contains(key) { return }
        do {
            switch model.kind {
            case let .float(c): _ = try c.graph.network.shapes(height: height, width: width)
            case let .int8(m): _ = try m.graph.network.shapes(height: height, width: width)
            }
        } catch {
            throw MVQError(.badInput, MVQModel.oneLine(error, path: "input"))
        }
        checkedSizes.insert(key)
    }

    // MARK: RGB

    /// Logits for an RGB image in memory: 8-bit R, G, B interleaved (HWC), rows `rowBytes` apart
    /// (≥ 3·width; the last row needs only 3·width bytes). The model's preprocessing is applied
    /// (resize, centre crop, rescale, BGR), exactly as `mvquant classify`/`infer` do on a decoded file.
    public func run(rgb: UnsafeRawBufferPointer, width: Int, height: Int, rowBytes: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: logitCount)
        try out.withUnsafeMutableBufferPointer { try run(rgb: rgb, width: width, height: height, rowBytes: rowBytes, into: $0) }
        return out
    }

    public func run(rgb: UnsafeRawBufferPointer, width: Int, height: Int, rowBytes: Int, into logits: UnsafeMutableBufferPointer<Float>) throws {
        try MVQLimits.checkImageSize(width: width, height: height)
        guard rowBytes >= 3 * width, rowBytes <= 1 << 30 else {
            throw MVQError(.invalidArgument, "row bytes \(rowBytes) is less than 3 × width (\(3 * width)) or too large")
        }
        let needed = (height - 1) * rowBytes + 3 * width
        guard let base = rgb.baseAddress, rgb.count >= needed else {
            throw MVQError(.invalidArgument, "RGB buffer holds \(rgb.count) bytes, \(width)×\(height) with row bytes \(rowBytes) needs \(needed)")
        }
        guard logits.count >= logitCount, logits.baseAddress != nil else {
            throw MVQError(.invalidArgument, "logits buffer holds \(logits.count) floats, the model has \(logitCount) labels")
        }
        let rowLength = 3 * width
        let pixels = [UInt8](unsafeUninitializedCapacity: rowLength * height) { buffer, done in
            for y in 0..<height {
                UnsafeMutableRawPointer(buffer.baseAddress! + y * rowLength).copyMemory(from: base + y * rowBytes, byteCount: rowLength)
            }
            done = rowLength * height
        }
        try run(image: RGBImage(width: width, height: height, pixels: pixels), into: logits)
    }

    /// Logits for a decoded image.
    public func run(image: RGBImage) throws -> [Float] {
        var out = [Float](repeating: 0, count: logitCount)
        try out.withUnsafeMutableBufferPointer { try run(image: image, into: $0) }
        return out
    }

    public func run(image: RGBImage, into logits: UnsafeMutableBufferPointer<Float>) throws {
        try MVQLimits.checkImageSize(width: image.width, height: image.height)
        let pre = model.preprocessor
        let size: ImageSize
        do {
            size = try pre.outputSize(forHeight: image.height, width: image.width)
        } catch {
            throw MVQError(.badInput, MVQModel.oneLine(error, path: "image"))
        }
        try MVQLimits.checkInputSize(height: size.height, width: size.width)
        let x: (values: [Float], height: Int, width: Int)
        do {
            x = try pre.pixelValues(for: image)
        } catch {
            throw MVQError(.badInput, MVQModel.oneLine(error, path: "image"))
        }
        try x.values.withUnsafeBufferPointer { try run(pixels: $0, height: x.height, width: x.width, into: logits) }
    }

    // MARK: files

    /// Logits for an image file (JPEG, PNG, PPM/PGM), decoded as the command line does (damaged
    /// files refused).
    public func run(imageFile path: String) throws -> [Float] {
        let image: RGBImage
        do {
            image = try ImageDecoder.decode(path: path, options: DecodeOptions())
        } catch {
            throw MVQError(.badInput, MVQModel.oneLine(error, path: path))
        }
        do {
            return try run(image: image)
        } catch let e as MVQError {
            throw MVQError(e.code, e.message.hasPrefix(path) ? e.message : "\(path): \(e.message)")
        }
    }

    /// The top `k` classes of an image file.
    public func classify(imageFile path: String, top k: Int = 5) throws -> [MVQPrediction] {
        model.top(k, of: try run(imageFile: path))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
