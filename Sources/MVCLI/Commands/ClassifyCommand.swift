import MVFormats
import MVImage

let classifyCommand = Command(
    name: "classify",
    summary: "Print the top-K labels of images (JPEG, PNG, PPM/PGM)",
    usage: "--model DIR|FILE.mvq IMAGE... [--top K] [--size HxW] [--json]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (float) or .mvq (int8)"),
        OptionSpec(name: "--top", value: "K", help: "labels per image (default 5)"),
        OptionSpec(name: "--size", value: "HxW", help: "input size (default: the preprocessor's)"),
        OptionSpec(name: "--threads", value: "N", help: "threads for the int8 executor (default: number of cores)"),
        OptionSpec(name: "--json", value: nil, help: "print JSON: [{image, top: [{label, index, probability}], damage?}]"),
        ImageLoading.recoverOption,
    ],
    details: "Images are preprocessed as the model's preprocessor_config.json says (resize, centre crop, rescale, BGR)."
) { args in
    let model = try LoadedModel.load(try args.required("--model"))
    if model.graph.network.isDense {
        throw InputError("\(model.path) is a segmentation model: use `mvquant segment` (or `eval` on a folder of images/ and masks/)")
    }
    guard !args.positional.isEmpty else { throw UsageError("give at least one image") }
    let k = try args.int("--top", default: 5, range: 1...100_000)
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    let size = try args.size("--size")
    let pre = try model.checkedPreprocessor(size: size)
    let runner = try model.makeRunner(threads: threads)
    let loading = ImageLoading(args)
    var results: [JSON] = []
    for path in args.positional {
        let recoveredBefore = loading.recovered.count
        let x = try loading.requiredPixelValues(pre, path: path)
        let logits = try x.values.withUnsafeBufferPointer { try runner.finiteLogits(nchw: $0, height: x.height, width: x.width) }
        let m = logits.max() ?? 0
        let e = logits.map { exp(Double($0 - m)) }
        let total = e.reduce(0, +)
        let order = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k)
        if args.has("--json") {
            var members: [(String, JSON)] = [("image", .string(path)), ("top", .array(order.map {
                .object([("label", .string(model.labels[$0])), ("index", .number(Double($0))), ("probability", .number(e[$0] / total))])
            }))]
            if loading.recovered.count > recoveredBefore, let damage = loading.recovered.last {
                members.append(("damage", .string(damage.summary)))
            }
            results.append(.object(members))
        } else {
            print(path)
            for i in order { print("  \(fixed(100 * e[i] / total, 2))%  \(model.labels[i]) (\(i))") }
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
