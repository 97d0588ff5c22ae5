import MVFloat
import MVKernels
import MVFormats
import MVModel

/// Runs one image at a time; one instance per thread.
protocol ModelRunner: AnyObject {
    /// Logits for one NCHW float32 image [1, C, H, W].
    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int) -> [Float]
}

/// A model given on the command line: a checkpoint directory runs in float, a .mvq in int8.
final class LoadedModel {
    enum Kind {
        case float(Checkpoint)
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
        throw InputError("\(path): not a checkpoint directory (config.json, model.safetensors)")
    }

    var graph: MobileViTGraph {
        switch kind {
        case let .float(c): return c.graph
        }
    }

    var preprocessor: JSON? {
        switch kind {
        case let .float(c): return c.preprocessor
        }
    }

    var labels: [String] { graph.config.labels }

    var kindDescription: String {
        switch kind {
        case .float: return "float32 checkpoint"
        }
    }

    var parameterCount: Int {
        switch kind {
        case let .float(c): return c.parameterCount
        }
    }

    /// The preprocessor's crop size, else the config's image size.
    var defaultSize: (Int, Int) {
        if let crop = preprocessor?["crop_size"], let h = crop["height"]?.int, let w = crop["width"]?.int { return (h, w) }
        let s = graph.config.imageSize
        return (s, s)
    }

    /// Bytes of the model on disk (the weights file of a checkpoint).
    var fileSize: Int {
        switch kind {
        case let .float(c): return (try? MappedFile(path: FileSystem.join(c.directory, "model.safetensors")).count) ?? 0
        }
    }

    /// Lines describing the kernels this CPU selects, for `--verbose`.
    func kernelLog(threads: Int) -> [String] {
        switch kind {
        case .float: return ["float32 kernels: \(Float32Kernels.useAVX2 ? "AVX2+FMA" : "generic SIMD"), 1 thread"]
        }
    }

    func makeRunner(threads: Int = 1) -> ModelRunner {
        switch kind {
        case let .float(c): return FloatRunner(FloatExecutor(checkpoint: c))
        }
    }

    func inspectExtra() -> String { "" }
    func inspectJSON() -> [(String, JSON)] { [] }
}

final class FloatRunner: ModelRunner {
    let executor: FloatExecutor
    init(_ executor: FloatExecutor) { self.executor = executor }

    func logits(nchw: UnsafeBufferPointer<Float>, height: Int, width: Int) -> [Float] {
        executor.run(nchw: nchw, height: height, width: width)
    }
}
