import MVFormats

/// A float tensor with its shape (PyTorch layout as stored in the checkpoint).
public struct FloatTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// A Hugging Face MobileViT checkpoint directory, loaded and checked against the graph its
/// config describes: `config.json`, `model.safetensors`, and `preprocessor_config.json`.
public struct Checkpoint: Sendable {
    public var directory: String
    public var config: MobileViTConfig
    public var graph: MobileViTGraph
    public var parameters: [String: FloatTensor]
    /// The preprocessor config, kept verbatim for the image pipeline (nil if the file is absent).
    public var preprocessor: JSON?

    public init(config: MobileViTConfig, parameters: [String: FloatTensor], preprocessor: JSON?, directory: String = "") {
        self.directory = directory
        self.config = config
        self.graph = MobileViTGraph(config: config)
        self.parameters = parameters
        self.preprocessor = preprocessor
    }

    /// Loads and validates a checkpoint directory. Every problem is an `InputError` naming the
    /// file and, for tensors, the tensor and both shapes.
    public static func load(directory: String) throws -> Checkpoint {
        guard FileSystem.isDirectory(directory) else { throw InputError("\(directory): not a checkpoint directory") }
        let configPath = FileSystem.join(directory, "config.json")
        let config: MobileViTConfig
        do {
            config = try MobileViTConfig(json: try JSON.parse(try FileSystem.read(configPath)))
        } catch let e as InputError {
            throw e.inFile(configPath)
        }
        var preprocessor: JSON?
        let preprocessorPath = FileSystem.join(directory, "preprocessor_config.json")
        if FileSystem.exists(preprocessorPath) {
            do {
                preprocessor = try JSON.parse(try FileSystem.read(preprocessorPath))
            } catch let e as InputError {
                throw e.inFile(preprocessorPath)
            }
        }
        let weightsPath = FileSystem.join(directory, "model.safetensors")
        let file = try SafeTensorsFile(path: weightsPath)
        let graph = MobileViTGraph(config: config)
        var parameters: [String: FloatTensor] = [:]
        let expected = graph.parameterShapes
        var expectedNames = Set<String>()
        for (name, shape) in expected {
            expectedNames.insert(name)
            guard let info = file.tensors[name] else {
                throw InputError("\(weightsPath): missing tensor '\(name)' (expected shape \(shape)) for the architecture in config.json")
            }
            guard info.shape == shape else {
                throw InputError("\(weightsPath): tensor '\(name)' has shape \(info.shape), config.json implies \(shape)")
            }
            guard info.dtype.isFloatingPoint else {
                throw InputError("\(weightsPath): tensor '\(name)' has dtype \(info.dtype.rawValue), expected F32, F16, BF16 or F64")
            }
            parameters[name] = FloatTensor(shape: shape, values: try file.floats(name))
        }
        for name in file.names where !expectedNames.contains(name) && !graph.isIgnorableTensor(name) {
            throw InputError("\(weightsPath): unexpected tensor '\(name)' \(file.tensors[name]!.shape) not used by the architecture in config.json")
        }
        for (name, t) in parameters where !t.values.allSatisfy({ $0.isFinite }) {
            throw InputError("\(weightsPath): tensor '\(name)' contains NaN or infinite values")
        }
        return Checkpoint(config: config, parameters: parameters, preprocessor: preprocessor, directory: directory)
    }

    public func tensor(_ name: String) -> FloatTensor {
        guard let t = parameters[name] else { preconditionFailure("checkpoint has no tensor \(name)") }
        return t
    }

    public var parameterCount: Int {
        graph.parameterShapes.reduce(0) { $0 + $1.1.reduce(1, *) }
    }
}

/// A convolution with its BatchNorm folded in: y = conv(x, w') + b', where
/// w'[o] = w[o]·γ[o]/√(σ²[o]+ε) and b' = β − μ·γ/√(σ²+ε) (+ the conv's own bias, if any).
public struct FoldedConv: Sendable {
    public var layer: ConvLayer
    /// [out][in/groups][k][k], as PyTorch.
    public var weight: [Float]
    public var bias: [Float]

    public init(_ layer: ConvLayer, from checkpoint: Checkpoint) {
        self.layer = layer
        var w = checkpoint.tensor("\(layer.name).convolution.weight").values
        var b = layer.bias ? checkpoint.tensor("\(layer.name).convolution.bias").values
                           : [Float](repeating: 0, count: layer.outChannels)
        if layer.batchNorm {
            let gamma = checkpoint.tensor("\(layer.name).normalization.weight").values
            let beta = checkpoint.tensor("\(layer.name).normalization.bias").values
            let mean = checkpoint.tensor("\(layer.name).normalization.running_mean").values
            let variance = checkpoint.tensor("\(layer.name).normalization.running_var").values
            let perOut = w.count / layer.outChannels
            for o in 0..<layer.outChannels {
                // Double keeps the fold as exact as the float inputs allow.
                let s = Double(gamma[o]) / (Double(variance[o]) + 1e-5).squareRoot()
                for i in 0..<perOut { w[o * perOut + i] = Float(Double(w[o * perOut + i]) * s) }
                b[o] = Float(Double(beta[o]) + (Double(b[o]) - Double(mean[o])) * s)
            }
        }
        weight = w
        bias = b
    }
}
