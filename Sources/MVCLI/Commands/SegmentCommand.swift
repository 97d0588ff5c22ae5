import MVFormats
import MVImage

let segmentCommand = Command(
    name: "segment",
    summary: "Write the label map of images as palette PNGs (segmentation models), optionally blended over the photo",
    usage: "--model DIR|FILE.mvq IMAGE... --output DIR [--overlay] [--size HxW] [--threads N] [--json]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "segmentation checkpoint directory (float) or .mvq (int8)"),
        OptionSpec(name: "--output", value: "DIR", help: "folder for NAME.png (the label map: pixel value = class, PASCAL VOC colours); created if missing"),
        OptionSpec(name: "--overlay", value: nil, help: "also write NAME.overlay.png: the classes' colours blended 50% over the photo (background left as it is)"),
        OptionSpec(name: "--size", value: "HxW", help: "input size (default: the preprocessor's crop size)"),
        OptionSpec(name: "--threads", value: "N", help: "threads for the int8 executor (default: number of cores)"),
        OptionSpec(name: "--json", value: nil, help: "print JSON: [{image, labels, overlay?, width, height, classes: {label: fraction of pixels}}]"),
        ImageLoading.recoverOption,
    ],
    details: """
    Each image is resized to the model's input size; the logits are upsampled to the image's own
    size, so a label map has the size of its image. Files are written whole (atomically), one
    image after another.
    """
) { args in
    let model = try LoadedModel.load(try args.required("--model"))
    guard model.graph.network.isDense else {
        throw InputError("\(model.path) is a classification model: use `mvquant classify`")
    }
    guard !args.positional.isEmpty else { throw UsageError("give at least one image") }
    let output = try args.required("--output")
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    let pre = try segmentationPreprocessor(model, size: try args.size("--size"))
    // Output names are decided (and checked for clashes) before any image is run.
    var names: [String: String] = [:]
    for path in args.positional {
        let base = FileSystem.baseName(path)
        let stem = base.lastIndex(of: ".").map { String(base[..<$0]) } ?? base
        if let other = names[stem] { throw UsageError("\(other) and \(path) would both write \(stem).png") }
        names[stem] = path
    }
    if !FileSystem.isDirectory(output) {
        guard mkdir(output, 0o755) == 0 else { throw InputError("\(output): cannot create the output folder") }
    }
    let runner = try model.makeRunner(threads: threads)
    let loading = ImageLoading(args)
    let palette = VOCPalette.colors256
    var results: [JSON] = []
    for path in args.positional {
        let base = FileSystem.baseName(path)
        let stem = base.lastIndex(of: ".").map { String(base[..<$0]) } ?? base
        guard let image = try loading.decode(path) else { continue }
        let x: (values: [Float], height: Int, width: Int)
        do { x = try pre.pixelValues(for: image) } catch let e as InputError { throw e.inFile(path) }
        let out = try x.values.withUnsafeBufferPointer {
            try runner.segment(nchw: $0, height: x.height, width: x.width, labelSize: (image.height, image.width))
        }
        let indices = out.labels.map { UInt8(truncatingIfNeeded: $0) }
        let labelsPath = FileSystem.join(output, stem + ".png")
        try FileSystem.writeAtomically(labelsPath, bytes: try PNGEncoder.encodeIndexed(indices: indices, width: image.width,
                                                                                        height: image.height, palette: palette))
        var members: [(String, JSON)] = [("image", .string(path)), ("labels", .string(labelsPath))]
        if args.has("--overlay") {
            var blended = image.pixels
            for (p, label) in indices.enumerated() where label != 0 {
                for ch in 0..<3 {
                    let photo = Int(blended[3 * p + ch]), colour = Int(palette[3 * Int(label) + ch])
                    blended[3 * p + ch] = UInt8((photo + colour + 1) / 2)
                }
            }
            let overlayPath = FileSystem.join(output, stem + ".overlay.png")
            try FileSystem.writeAtomically(overlayPath, bytes: try PNGEncoder.encodeRGB(RGBImage(width: image.width, height: image.height,
                                                                                                pixels: blended)))
            members.append(("overlay", .string(overlayPath)))
        }
        var counts = [Int](repeating: 0, count: model.labels.count)
        for l in out.labels { counts[Int(l)] += 1 }
        let total = Double(out.labels.count)
        members += [("width", .number(Double(image.width))), ("height", .number(Double(image.height))),
                    ("classes", .object(counts.enumerated().filter { $0.element > 0 }.map {
                        (model.labels[$0.offset], .number(Double($0.element) / total))
                    }))]
        if args.has("--json") {
            results.append(.object(members))
        } else {
            let top = counts.enumerated().filter { $0.element > 0 }.sorted { $0.element > $1.element }.prefix(4)
            print("\(path) → \(labelsPath): " + top.map { "\(model.labels[$0.offset]) \(fixed(100 * Double($0.element) / total, 1))%" }
                .joined(separator: ", "))
        }
    }
    if args.has("--json") { print(JSON.array(results).serialized(indent: 2)) }
    return 0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
