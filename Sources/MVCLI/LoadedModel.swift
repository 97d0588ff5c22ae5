import MVFloat
import MVFormats
import MVImage
import MVInt8
import MVKernels
import MVModel

/// Runs one image at a time; one instance per thread.
protocol ModelRunner: AnyObject {
    /// The model file or directory (for error messages).
    var modelPath: String { get }
    /// Logits for one NCHW float32 image [1, C, H, W].
    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int) -> [Float]
    /// The same into a caller's buffer (one entry per class): what `bench` times, so that the
    /// int8 path's figure includes no allocation.
    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, into: UnsafeMutableBufferPointer<Float>)
    /// Whether the model predicts per pixel (segmentation): use `segment`.
    var isDense: Bool { get }
    /// A dense head's logit map [h, w, classes] (NHWC) and label map (row-major) at the input's
    /// size, or at `labelSize` (the original image's).
    func segment(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, labelSize: (Int, Int)?) throws -> DenseOutput
    /// The same into a caller's buffers at the input's size: what `bench` times.
    func segment(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, logits: UnsafeMutableBufferPointer<Float>,
                 labels: UnsafeMutableBufferPointer<Int32>) throws
}

/// What a segmentation model gives for one image.
struct DenseOutput {
    /// [h, w, classes], NHWC, at 1/output stride.
    var logits: [Float]
    var logitShape: TensorShape
    /// [height, width] of the labels (the input's, or the size asked for).
    var labels: [Int32]
}

/// Network input sizes are checked before anything is allocated for them.
func checkInputSize(_ h: Int, _ w: Int) throws {
    guard h >= 1, w >= 1, h <= 4096, w <= 4096, h * w <= 2048 * 2048 else {
        throw InputError("input size \(h)×\(w) is outside the supported range (sides 1…4096, at most 4 megapixels)")
    }
}

/// The input size checked, and the label map's size (the input's unless given): label maps are
/// made at an image's own size, which the decoder's pixel budget bounds; this bounds it again for
/// sizes given otherwise.
func checkedLabelSize(_ height: Int, _ width: Int, _ labelSize: (Int, Int)?) throws -> (Int, Int) {
    try checkInputSize(height, width)
    let (h, w) = labelSize ?? (height, width)
    guard h >= 1, w >= 1, h <= 1 << 16, w <= 1 << 16, h * w <= 100_000_000 else {
        throw InputError("label map size \(h)×\(w) is outside the supported range (sides 1…65536, at most 100 megapixels)")
    }
    return (h, w)
}

extension ModelRunner {
    /// `logits`, or an error when any is NaN or infinite: a float checkpoint whose weights are
    /// finite but huge (or a preprocessor whose rescale factor is) overflows, and printing
    /// "nan%" with exit 0 would hide it. The input size is checked first: without a centre crop
    /// a preprocessor's output size follows each image.
    func finiteLogits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int) throws -> [Float] {
        try checkInputSize(height, width)
        let logits = logits(nchw: nchw, height: height, width: width)
        guard logits.allSatisfy(\.isFinite) else {
            throw InputError("\(modelPath): the model's outputs are not finite (NaN or infinity): its weights or preprocessing overflow float32")
        }
        return logits
    }
}

/// A model given on the command line: a checkpoint directory runs in float, a .mvq in int8.
final class LoadedModel {
    enum Kind {
        case float(Checkpoint)
        case int8(QuantizedModel)
    }

    let path: String
    let kind: Kind

    private init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    static func load(_ path: String) throws -> LoadedModel {
        if FileSystem.isDirectory(path) {
            return LoadedModel(path: path, kind: .float(try Checkpoint.load(directory: path)))
        }
        guard FileSystem.exists(path) else { throw InputError("\(path): no such file or directory") }
        return LoadedModel(path: path, kind: .int8(try QuantizedModel(path: path)))
    }

    var graph: MobileViTGraph {
        switch kind {
        case let .float(c): return c.graph
        case let .int8(m): return m.graph
        }
    }

    var preprocessorConfig: JSON? {
        switch kind {
        case let .float(c): return c.preprocessor
        case let .int8(m): return m.preprocessor
        }
    }

    var labels: [String] { graph.config.labels }

    var isInt8: Bool {
        if case .int8 = kind { return true }
        return false
    }

    var kindDescription: String { isInt8 ? "int8 .mvq model" : "float32 checkpoint" }

    var parameterCount: Int {
        switch kind {
        case let .float(c): return c.parameterCount
        case let .int8(m): return m.graph.parameterShapes.reduce(0) { $0 + $1.1.reduce(1, *) }
        }
    }

    /// The preprocessor's crop size, else the config's image size.
    var defaultSize: (Int, Int) {
        if let crop = preprocessorConfig?["crop_size"], let h = crop["height"]?.int, let w = crop["width"]?.int { return (h, w) }
        let s = graph.config.imageSize
        return (s, s)
    }

    /// Bytes of the model on disk (the weights file of a checkpoint).
    var fileSize: Int {
        switch kind {
        case let .float(c): return (try? MappedFile(path: FileSystem.join(c.directory, "model.safetensors")).count) ?? 0
        case let .int8(m): return m.file.fileSize
        }
    }

    /// The image pipeline of this model (its preprocessor config), optionally at another size.
    func preprocessor(size: (Int, Int)?) throws -> Preprocessor {
        var p = try preprocessorConfig.map { try Preprocessor(config: $0) } ?? Preprocessor()
        if let size { p.targetSize = ImageSize(height: size.0, width: size.1) }
        return p
    }

    /// The image pipeline, after checking the size it gives every image (`size`, else the
    /// preprocessor's centre crop) against the network's range before any image is decoded: a
    /// config may ask for crops up to 8192 a side, and a float run at 8000×8000 needs a 2 GB arena.
    func checkedPreprocessor(size: (Int, Int)?) throws -> Preprocessor {
        if let size { try checkInputSize(size.0, size.1) }
        let p = try preprocessor(size: size)
        if size == nil && p.doCenterCrop { try checkInputSize(p.cropSize.height, p.cropSize.width) }
        return p
    }

    /// Lines describing the kernels this CPU selects, for `--verbose`.
    func kernelLog(threads: Int) -> [String] {
        switch kind {
        case .float: return ["float32 kernels: \(Float32Kernels.useAVX2 ? "AVX2+FMA" : "generic SIMD"), 1 thread"]
        case .int8:
            // Then one line per operator family: the ISA that runs it, and why when it falls back.
            return [KernelISA.selectionSummary, "int8 kernels: \(KernelISA.best.rawValue), \(threads) thread(s)"]
                + KernelConfig.summary(for: KernelISA.best).map { "  " + $0 }
        }
    }

    /// Extra text for `inspect`: quantisation parameters per layer and the file's sections.
    func inspectExtra() -> String {
        guard case let .int8(m) = kind else { return "" }
        var s = "file sections (bytes):\n"
        s += table(m.file.sectionSizes.map { ["  " + $0.0, String($0.1)] }, rightAlign: [1]) + "\n"
        var byLayer: [String: Int] = [:]
        for (name, t) in m.file.tensors {
            let layer = name.split(separator: ".").dropLast().joined(separator: ".")
            byLayer[layer, default: 0] += t.dataRange.count
        }
        s += "\ncalibration: \(m.calibration.serialized())\n\nactivation quantisation (scale, zero point) and parameter bytes:\n"
        var rows: [[String]] = [["tensor", "scale", "zero point", "param bytes"]]
        for name in m.activations.keys.sorted() {
            let p = m.activations[name]!
            rows.append(["  " + name.replacingPrefix("mobilevit.", with: ""), formatScale(p.scale), String(p.zeroPoint),
                         byLayer[name].map(String.init) ?? ""])
        }
        return s + table(rows, rightAlign: [1, 2, 3])
    }

    func inspectJSON() -> [(String, JSON)] {
        guard case let .int8(m) = kind else { return [] }
        return [
            ("sections", .object(m.file.sectionSizes.map { ($0.0, .number(Double($0.1))) })),
            ("calibration", m.calibration),
            ("activations", .object(m.activations.keys.sorted().map { name in
                let p = m.activations[name]!
                return (name, .object([("scale", .number(p.scale)), ("zero_point", .number(Double(p.zeroPoint)))]))
            })),
        ]
    }

    func makeRunner(threads: Int = 1) throws -> ModelRunner {
        switch kind {
        case let .float(c): return FloatRunner(FloatExecutor(checkpoint: c), modelPath: path)
        case let .int8(m): return Int8Runner(try Int8Executor(model: m, threads: threads), modelPath: path)
        }
    }
}

final class FloatRunner: ModelRunner {
    let executor: FloatExecutor
    let modelPath: String
    init(_ executor: FloatExecutor, modelPath: String) {
        self.executor = executor
        self.modelPath = modelPath
    }

    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int) -> [Float] {
        executor.run(nchw: nchw, height: height, width: width)
    }

    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, into out: UnsafeMutableBufferPointer<Float>) {
        let logits = executor.run(nchw: nchw, height: height, width: width)
        _ = out.update(fromContentsOf: logits)
    }

    var isDense: Bool { executor.isDense }

    func segment(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, labelSize: (Int, Int)?) throws -> DenseOutput {
        let (lh, lw) = try checkedLabelSize(height, width, labelSize)
        let shape = try executor.logitShape(height: height, width: width)
        let logits = executor.run(nchw: nchw, height: height, width: width)
        guard logits.allSatisfy(\.isFinite) else {
            throw InputError("\(modelPath): the model's outputs are not finite (NaN or infinity): its weights or preprocessing overflow float32")
        }
        let labels = logits.withUnsafeBufferPointer {
            FloatExecutor.labels(logits: $0, height: shape.height, width: shape.width, classes: shape.channels,
                                 outputHeight: lh, outputWidth: lw)
        }
        return DenseOutput(logits: logits, logitShape: shape, labels: labels)
    }

    func segment(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, logits: UnsafeMutableBufferPointer<Float>,
                 labels: UnsafeMutableBufferPointer<Int32>) throws {
        let out = try segment(nchw: nchw, height: height, width: width, labelSize: nil)
        _ = logits.update(fromContentsOf: out.logits)
        _ = labels.update(fromContentsOf: out.labels)
    }
}

final class Int8Runner: ModelRunner {
    let executor: Int8Executor
    let modelPath: String
    init(_ executor: Int8Executor, modelPath: String) {
        self.executor = executor
        self.modelPath = modelPath
    }

    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int) -> [Float] {
        executor.run(nchw: nchw, height: height, width: width)
    }

    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, into out: UnsafeMutableBufferPointer<Float>) {
        executor.run(nchw: nchw, height: height, width: width, into: out)
    }

    var isDense: Bool { executor.isDense }

    func segment(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, labelSize: (Int, Int)?) throws -> DenseOutput {
        let (lh, lw) = try checkedLabelSize(height, width, labelSize)
        let shape = try executor.logitShape(height: height, width: width)
        var logits = [Float](repeating: 0, count: shape.count)
        var labels = [Int32](repeating: 0, count: lh * lw)
        try logits.withUnsafeMutableBufferPointer { l in
            try labels.withUnsafeMutableBufferPointer {
                try executor.runDense(nchw: nchw, height: height, width: width, logits: l, labels: $0, labelSize: (lh, lw))
            }
        }
        return DenseOutput(logits: logits, logitShape: shape, labels: labels)
    }

    func segment(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, logits: UnsafeMutableBufferPointer<Float>,
                 labels: UnsafeMutableBufferPointer<Int32>) throws {
        try executor.runDense(nchw: nchw, height: height, width: width, logits: logits, labels: labels)
    }

    /// One run with its time split by the tensors it produces, in order: each tensor is charged the
    /// time since the previous one was reported (the first since the run began; the tail after the
    /// last is charged to "logits", for a segmentation model "logits and labels"). Milliseconds.
    func layerTimes(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int, into out: UnsafeMutableBufferPointer<Float>,
                    labels: UnsafeMutableBufferPointer<Int32>?) throws -> [(String, Double)] {
        var times: [(String, Double)] = []
        times.reserveCapacity(512)
        var last = monotonicSeconds()
        let observer: Int8Observer = { name, _, _, _, _, _ in
            let now = monotonicSeconds()
            times.append((name, (now - last) * 1000))
            last = now
        }
        if let labels {
            try executor.runDense(nchw: nchw, height: height, width: width, logits: out, labels: labels, observer: observer)
            times.append(("logits and labels", (monotonicSeconds() - last) * 1000))
        } else {
            executor.run(nchw: nchw, height: height, width: width, into: out, observer: observer)
            times.append(("logits", (monotonicSeconds() - last) * 1000))
        }
        return times
    }
}

/// The repository's embedded default job (Calibration/), found from the working directory or
/// from the executable's location (e.g. .build/release/mvquant inside the repository).
enum DefaultPaths {
    static let modelDirectory = "Calibration/mobilevit_xxs_cifar10_64"
    static let calibrationImages = "Calibration/calib"
    static let validationImages = "Calibration/val"

    static func locate(_ relative: String) throws -> String {
        var candidates = [relative]
        var dir = FileSystem.directoryName(executablePath())
        for _ in 0..<5 {
            candidates.append(FileSystem.join(dir, relative))
            dir = FileSystem.directoryName(dir)
        }
        for c in candidates where FileSystem.exists(c) { return c }
        throw InputError("\(relative) not found (run from the mvquant repository, or pass the path explicitly)")
    }

    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
