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
        OptionSpec(name: "--output", value: "OUT", help: "safetensors file to write: logits, float32 [N, num_labels]; for a segmentation model logits [N, num_labels, h, w] (1/output stride) and labels, int32 [N, H, W] (the argmax of the logits upsampled to the input)"),
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
    // Segmentation: logit maps (NCHW, as transformers) and label maps, every image at one size.
    var labels: [Int32] = []
    var denseShape: (logits: TensorShape, height: Int, width: Int)?
    func run(_ image: UnsafeBufferPointer<Float>, _ h: Int, _ w: Int, _ name: String) throws {
        guard runner.isDense else {
            logits += try runner.finiteLogits(nchw: image, height: h, width: w)
            return
        }
        let out = try runner.segment(nchw: image, height: h, width: w, labelSize: nil)
        if let d = denseShape, d.height != h || d.width != w {
            throw InputError("\(name): preprocessed to \(h)×\(w), but the first image gave \(d.height)×\(d.width); "
                             + "segmentation outputs are one tensor: give --size")
        }
        denseShape = (out.logitShape, h, w)
        let s = out.logitShape
        for c in 0..<s.channels {
            for p in 0..<s.pixels { logits.append(out.logits[p * s.channels + c]) }
        }
        labels += out.labels
    }
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
                try run(image, h, w, "\(file) image \(i)")
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
            try x.values.withUnsafeBufferPointer { try run($0, x.height, x.width, path) }
        }
        n = items.count
        source = paths.joined(separator: " ")
    } else {
        throw UsageError("give --input FILE.safetensors or --images PATH")
    }
    var entries: [SafeTensorsWriter.Entry] = [.float32("logits", shape: [n, model.labels.count], logits)]
    if let d = denseShape {
        entries = [.float32("logits", shape: [n, d.logits.channels, d.logits.height, d.logits.width], logits),
                   .int32("labels", shape: [n, d.height, d.width], labels)]
    }
    try SafeTensorsWriter.write(entries, metadata: ["model": model.path, "input": source], to: output)
    return 0
}
