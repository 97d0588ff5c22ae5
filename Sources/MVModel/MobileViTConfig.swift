import MVFormats

/// The activation functions a MobileViT config may name (`hidden_act`).
public enum Activation: String, Sendable, Codable {
    case none, silu, relu, relu6, gelu

    init(configName: String) throws {
        switch configName {
        case "silu", "swish": self = .silu
        case "relu": self = .relu
        case "relu6": self = .relu6
        case "gelu": self = .gelu
        default: throw InputError("unsupported hidden_act '\(configName)' (supported: silu, swish, relu, relu6, gelu)")
        }
    }
}

/// What a checkpoint's head computes (transformers' `architectures`).
public enum ModelTask: String, Sendable, Equatable {
    /// `MobileViTForImageClassification`: expansion conv, global pooling, linear classifier.
    case classification
    /// `MobileViTForSemanticSegmentation`: DeepLabV3 (ASPP and a 1×1 classifier) on the backbone's
    /// last feature map, logits at 1/`outputStride` of the input.
    case segmentation

    var architecture: String {
        switch self {
        case .classification: return "MobileViTForImageClassification"
        case .segmentation: return "MobileViTForSemanticSegmentation"
        }
    }
}

/// The architecture hyper-parameters of a MobileViT v1 model, as in Hugging Face's `config.json`.
/// Any consistent v1 configuration is accepted, not only the published XXS/XS/S.
public struct MobileViTConfig: Sendable, Equatable {
    public var task: ModelTask
    /// 32 (no dilation), 16 (layer 5 keeps its input's resolution, dilated) or 8 (layers 4 and 5).
    public var outputStride: Int
    /// Segmentation: the dilations of ASPP's three 3×3 branches.
    public var atrousRates: [Int]
    /// Segmentation: the channels of every ASPP branch and of its projection.
    public var asppOutChannels: Int
    public var numChannels: Int
    /// Seven channel counts: stem, layer1…layer5 outputs, expansion conv.
    public var neckHiddenSizes: [Int]
    /// Transformer widths of the three MobileViT blocks (layers 3, 4, 5).
    public var hiddenSizes: [Int]
    public var expandRatio: Double
    public var numAttentionHeads: Int
    public var mlpRatio: Double
    public var patchSize: Int
    public var convKernelSize: Int
    public var layerNormEps: Double
    public var hiddenAct: Activation
    public var qkvBias: Bool
    public var imageSize: Int
    /// Class names by index; its count is the number of labels.
    public var labels: [String]

    public var numLabels: Int { labels.count }

    /// Parses `config.json` text. Errors name the field at fault.
    public init(json: JSON) throws {
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            guard let v = json[key] else {
                if let value { return value }
                throw InputError("config.json: missing '\(key)'")
            }
            guard let i = v.int else { throw InputError("config.json: '\(key)' must be an integer") }
            return i
        }
        func double(_ key: String, default value: Double) throws -> Double {
            guard let v = json[key] else { return value }
            guard let d = v.double else { throw InputError("config.json: '\(key)' must be a number") }
            return d
        }
        func ints(_ key: String) throws -> [Int] {
            guard let a = json[key]?.array else { throw InputError("config.json: missing '\(key)'") }
            let values = a.compactMap(\.int)
            guard values.count == a.count else { throw InputError("config.json: '\(key)' must be a list of integers") }
            return values
        }
        // Every config transformers writes names its architecture; one without (or with a
        // non-string) model_type is not known to be MobileViT, so it is refused, not guessed.
        guard let type = json["model_type"]?.string else {
            throw InputError("config.json: no model_type string (mvquant runs MobileViT v1, model_type 'mobilevit')")
        }
        if type != "mobilevit" {
            throw InputError("config.json: unsupported model_type '\(type)' (mvquant runs MobileViT v1, model_type 'mobilevit')")
        }
        numChannels = try int("num_channels", default: 3)
        neckHiddenSizes = try ints("neck_hidden_sizes")
        hiddenSizes = try ints("hidden_sizes")
        expandRatio = try double("expand_ratio", default: 4.0)
        numAttentionHeads = try int("num_attention_heads", default: 4)
        mlpRatio = try double("mlp_ratio", default: 2.0)
        patchSize = try int("patch_size", default: 2)
        convKernelSize = try int("conv_kernel_size", default: 3)
        layerNormEps = try double("layer_norm_eps", default: 1e-5)
        hiddenAct = try Activation(configName: json["hidden_act"]?.string ?? "silu")
        qkvBias = json["qkv_bias"]?.bool ?? true
        imageSize = try int("image_size", default: 256)
        let architectures = json["architectures"]?.array?.compactMap(\.string) ?? []
        if architectures.contains(ModelTask.segmentation.architecture) {
            task = .segmentation
        } else if architectures.isEmpty || architectures.contains(ModelTask.classification.architecture) {
            task = .classification
        } else {
            throw InputError("config.json: unsupported architectures \(architectures) (mvquant runs MobileViTForImageClassification "
                             + "and MobileViTForSemanticSegmentation)")
        }
        outputStride = try int("output_stride", default: task == .segmentation ? 16 : 32)
        atrousRates = json["atrous_rates"] == nil ? [6, 12, 18] : try ints("atrous_rates")
        asppOutChannels = try int("aspp_out_channels", default: 256)
        labels = try Self.parseLabels(json)
        try validate()
    }

    static func parseLabels(_ json: JSON) throws -> [String] {
        if let id2label = json["id2label"]?.object, !id2label.isEmpty {
            var byIndex: [Int: String] = [:]
            for (k, v) in id2label {
                guard let i = Int(k), i >= 0, let name = v.string else { throw InputError("config.json: bad id2label entry '\(k)'") }
                byIndex[i] = name
            }
            let n = byIndex.count
            guard (0..<n).allSatisfy({ byIndex[$0] != nil }) else { throw InputError("config.json: id2label indices are not 0..<\(n)") }
            if let numLabels = json["num_labels"]?.int, numLabels != n {
                throw InputError("config.json: num_labels \(numLabels) disagrees with id2label (\(n) entries)")
            }
            return (0..<n).map { byIndex[$0]! }
        }
        guard let n = json["num_labels"]?.int, n > 0 else { throw InputError("config.json: needs id2label or num_labels") }
        return (0..<n).map { "LABEL_\($0)" }
    }

    /// Checks that the numbers describe a buildable network, with limits that keep a hostile
    /// config from asking for absurd allocations.
    public func validate() throws {
        guard numChannels >= 1 && numChannels <= 16 else { throw InputError("config.json: num_channels \(numChannels) out of range 1…16") }
        guard neckHiddenSizes.count == 7 else { throw InputError("config.json: neck_hidden_sizes needs 7 entries, has \(neckHiddenSizes.count)") }
        guard hiddenSizes.count == 3 else { throw InputError("config.json: hidden_sizes needs 3 entries, has \(hiddenSizes.count)") }
        for c in neckHiddenSizes + hiddenSizes where c < 1 || c > 8192 {
            throw InputError("config.json: channel count \(c) out of range 1…8192")
        }
        // Before the divisibility check, which would divide by zero.
        guard numAttentionHeads >= 1 else { throw InputError("config.json: num_attention_heads must be positive") }
        for h in hiddenSizes where h % numAttentionHeads != 0 {
            throw InputError("config.json: hidden size \(h) is not divisible by num_attention_heads \(numAttentionHeads)")
        }
        guard expandRatio > 0 && expandRatio <= 16 else { throw InputError("config.json: expand_ratio \(expandRatio) out of range") }
        guard mlpRatio > 0 && mlpRatio <= 16 else { throw InputError("config.json: mlp_ratio \(mlpRatio) out of range") }
        guard patchSize >= 1 && patchSize <= 8 else { throw InputError("config.json: patch_size \(patchSize) out of range 1…8") }
        guard convKernelSize >= 1 && convKernelSize <= 7 && convKernelSize % 2 == 1 else {
            throw InputError("config.json: conv_kernel_size \(convKernelSize) must be odd, 1…7")
        }
        guard layerNormEps > 0 && layerNormEps < 1 else { throw InputError("config.json: layer_norm_eps \(layerNormEps) out of range") }
        guard numLabels >= 1 && numLabels <= 100_000 else { throw InputError("config.json: \(numLabels) labels out of range") }
        guard [8, 16, 32].contains(outputStride) else { throw InputError("config.json: output_stride \(outputStride) must be 8, 16 or 32") }
        if task == .segmentation {
            guard atrousRates.count == 3 else { throw InputError("config.json: atrous_rates needs 3 entries, has \(atrousRates.count)") }
            for r in atrousRates where r < 1 || r > 64 { throw InputError("config.json: atrous rate \(r) out of range 1…64") }
            guard asppOutChannels >= 1 && asppOutChannels <= 8192 else {
                throw InputError("config.json: aspp_out_channels \(asppOutChannels) out of range 1…8192")
            }
            guard numLabels <= 255 else { throw InputError("config.json: \(numLabels) segmentation classes (at most 255: label maps are 8-bit)") }
        }
    }

    /// Canonical JSON (the fields mvquant uses), stored in .mvq files.
    public var json: JSON {
        var fields: [(String, JSON)] = [
            ("model_type", "mobilevit"),
            ("num_channels", .number(Double(numChannels))),
            ("neck_hidden_sizes", .array(neckHiddenSizes.map { .number(Double($0)) })),
            ("hidden_sizes", .array(hiddenSizes.map { .number(Double($0)) })),
            ("expand_ratio", .number(expandRatio)),
            ("num_attention_heads", .number(Double(numAttentionHeads))),
            ("mlp_ratio", .number(mlpRatio)),
            ("patch_size", .number(Double(patchSize))),
            ("conv_kernel_size", .number(Double(convKernelSize))),
            ("layer_norm_eps", .number(layerNormEps)),
            ("hidden_act", .string(hiddenAct.rawValue)),
            ("qkv_bias", .bool(qkvBias)),
            ("image_size", .number(Double(imageSize))),
            ("output_stride", .number(Double(outputStride))),
            ("num_labels", .number(Double(numLabels))),
            ("id2label", .object(labels.enumerated().map { (String($0.offset), .string($0.element)) })),
        ]
        // Classification models' JSON stays as it was before segmentation existed (same .mvq bytes).
        if task == .segmentation {
            fields.insert(("architectures", .array([.string(task.architecture)])), at: 1)
            fields.append(("atrous_rates", .array(atrousRates.map { .number(Double($0)) })))
            fields.append(("aspp_out_channels", .number(Double(asppOutChannels))))
        }
        return .object(fields)
    }

    /// A short name for the published configurations, else "custom".
    public var variantName: String {
        let backbone: String
        switch (neckHiddenSizes, hiddenSizes) {
        case ([16, 16, 24, 48, 64, 80, 320], [64, 80, 96]): backbone = "MobileViT-XXS"
        case ([32, 32, 48, 64, 80, 96, 384], [96, 120, 144]): backbone = "MobileViT-XS"
        case ([16, 32, 64, 96, 128, 160, 640], [144, 192, 240]): backbone = "MobileViT-S"
        default: backbone = "MobileViT (custom)"
        }
        return task == .segmentation ? "DeepLabV3-\(backbone), output stride \(outputStride)" : backbone
    }
}

/// transformers' `make_divisible`: channel counts rounded to a multiple of 8, never more than 10% down.
public func makeDivisible(_ value: Int, divisor: Int = 8) -> Int {
    var v = max(divisor, (value + divisor / 2) / divisor * divisor)
    if Double(v) < 0.9 * Double(value) { v += divisor }
    return v
}
