import MVFormats
import MVImage
import MVModel

let inferCommand = Command(
    name: "infer",
    summary: "Run a model on pixel_values tensors or images and write the logits to a safetensors file",
    usage: "--model DIR|FILE.mvq (--input FILE.safetensors[:TENSOR] | --images DIR|IMAGE...) --output OUT.safetensors",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (float) or .mvq file (int8)"),
        OptionSpec(name: "--input", value: "FILE[:TENSOR]", help: "float32 NCHW input [N, C, H, W] (default tensor: pixel_values)"),
        OptionSpec(name: "--images", value: "PATH", help: "an image file or folder (repeatable; files in dataset order), preprocessed as the model says", repeats: true),
        OptionSpec(name: "--size", value: "HxW", help: "with --images: input size (default: the preprocessor's)"),
        OptionSpec(name: "--threads", value: "N", help: "threads for the int8 executor (default: number of cores)"),
        OptionSpec(name: "--output", value: "OUT", help: "safetensors file to write: logits, float32 [N, num_labels]"),
        ImageLoading.recoverOption,
    ],
    details: "The input layout is PyTorch's (as transformers' pixel_values and the golden files). Results of .mvq models are bit-identical across machines, ISAs and thread counts."
) { args in
    let model = try LoadedModel.load(try args.required("--model"))
    let output = try args.required("--output")
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    let runner = try model.makeRunner(threads: threads)
    var logits: [Float] = []
    var n = 0
    var source = ""
    if let spec = args.value("--input") {
        guard args.values["--images"] == nil else { throw UsageError("give --input or --images, not both") }
        var file = spec, tensor = "pixel_values"
        if !FileSystem.exists(spec), let colon = spec.lastIndex(of: ":") {
            file = String(spec[..<colon])
            tensor = String(spec[spec.index(after: colon)...])
        }
        let input = try SafeTensorsFile(path: file)
        let info = try input.info(tensor)
        let c = model.graph.config.numChannels
        let shape = info.shape.count == 3 ? [1] + info.shape : info.shape
        guard shape.count == 4, shape[1] == c else {
            throw InputError("\(file): tensor '\(tensor)' has shape \(info.shape), expected [N, \(c), H, W]")
        }
        let (h, w) = (shape[2], shape[3])
        n = shape[0]
        guard n >= 1 && n <= 100_000 else { throw InputError("\(file): batch size \(n) out of range") }
        try checkInputSize(h, w)
        let values = try input.floats(tensor)
        guard values.allSatisfy(\.isFinite) else { throw InputError("\(file): tensor '\(tensor)' contains NaN or infinite values") }
        try values.withUnsafeBufferPointer { all in
            for i in 0..<n {
                let image = UnsafeBufferPointer(rebasing: all[(i * c * h * w)..<((i + 1) * c * h * w)])
                logits += try runner.finiteLogits(nchw: image, height: h, width: w)
            }
        }
        source = spec
    } else if let paths = args.values["--images"] {
        let size = try args.size("--size")
        let pre = try model.checkedPreprocessor(size: size)
        var items: [String] = []
        for p in paths {
            // Each path given must yield images: one that does not (not an image, an empty folder)
            // is an error even when other paths do, not silently left out of the output.
            let found = try ImageDataset.load(path: p).items.map(\.path)
            guard !found.isEmpty else { throw InputError("\(p): no image files") }
            items += found
        }
        let loading = ImageLoading(args)
        for path in items {
            let x = try loading.requiredPixelValues(pre, path: path)
            logits += try x.values.withUnsafeBufferPointer { try runner.finiteLogits(nchw: $0, height: x.height, width: x.width) }
        }
        n = items.count
        source = paths.joined(separator: " ")
    } else {
        throw UsageError("give --input FILE.safetensors or --images PATH")
    }
    try SafeTensorsWriter.write([.float32("logits", shape: [n, model.labels.count], logits)],
                                metadata: ["model": model.path, "input": source], to: output)
    return 0
}
