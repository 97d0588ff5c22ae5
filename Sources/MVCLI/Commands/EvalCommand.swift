import MVFormats
import MVImage

let evalCommand = Command(
    name: "eval",
    summary: "Measure top-1/top-5 accuracy on a labelled ImageFolder tree, optionally against a second model",
    usage: "--model DIR|FILE.mvq --images DIR [--compare DIR|FILE.mvq] [--limit N] [--size HxW] [--threads N] [--json OUT]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (runs in float) or .mvq (runs in int8)"),
        OptionSpec(name: "--images", value: "DIR", help: "ImageFolder tree: one subfolder per class"),
        OptionSpec(name: "--compare", value: "PATH", help: "a second model: report both, the drop and the top-1 agreement"),
        OptionSpec(name: "--limit", value: "N", help: "use the first N images (in dataset order)"),
        OptionSpec(name: "--size", value: "HxW", help: "input size (default: the preprocessor's crop size)"),
        OptionSpec(name: "--threads", value: "N", help: "threads, one image per thread (default: number of cores)"),
        OptionSpec(name: "--json", value: "OUT", help: "write {images, top1, top5, predictions, per_class, skipped, compare?} ('-' for stdout)"),
        ImageLoading.recoverOption,
        ImageLoading.skipOption,
    ],
    details: "Class folders are matched to the model's labels by name, else taken in sorted order."
) { args in
    let model = try LoadedModel.load(try args.required("--model"))
    let images = try args.required("--images")
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    let size = try args.size("--size")
    if let size { try checkInputSize(size.0, size.1) }
    // The compare model is loaded and checked before the first (long) evaluation.
    let other = try args.value("--compare").map { try LoadedModel.load($0) }
    if let other, other.labels != model.labels {
        throw InputError("\(other.path): --compare model has other labels than \(model.path) (\(other.labels.count) against \(model.labels.count)); their predictions cannot be compared")
    }
    var dataset = try loadLabelledDataset(images, model: model, for: "eval")
    if let limit = try args.value("--limit").map({ _ in try args.int("--limit", default: 0, range: 1...Int.max) }), limit < dataset.count {
        dataset = ImageDataset(classNames: dataset.classNames, classLabels: dataset.classLabels, items: Array(dataset.items.prefix(limit)))
    }
    let loading = ImageLoading(args)
    let r = try evaluate(model, dataset: dataset, size: size, threads: threads, label: "eval", images: loading)
    args.report("\(model.path) (\(model.kindDescription)) on \(r.images) images: top-1 \(percent(r.top1))  top-5 \(percent(r.top5))  (\(fixed(Double(r.images) / r.seconds, 1)) images/s)")
    var rows: [[String]] = [["class", "accuracy", "images"]]
    for c in r.perClass where c.total > 0 {
        rows.append([c.name, percent(Double(c.correct) / Double(c.total)), String(c.total)])
    }
    if rows.count <= 51 { args.report(table(rows, rightAlign: [1, 2])) }
    var json = r.json
    if let other {
        let o = try evaluate(other, dataset: dataset, size: size, threads: threads, label: "eval (compare)", images: loading)
        let agreement = Double(zip(r.predictions, o.predictions).filter { $0 == $1 && $0 >= 0 }.count) / Double(r.images)
        args.report("\(other.path) (\(other.kindDescription)): top-1 \(percent(o.top1))  top-5 \(percent(o.top5))")
        args.report("drop (compare − model): \(fixed(100 * (o.top1 - r.top1), 2)) points top-1, top-1 agreement \(percent(agreement))")
        if case var .object(members) = json {
            members.append(("compare", o.json))
            members.append(("drop_points", .number(100 * (o.top1 - r.top1))))
            members.append(("agreement", .number(agreement)))
            json = .object(members)
        }
    }
    if let line = loading.summary { args.report(line) }
    if case var .object(members) = json {
        members += loading.json
        json = .object(members)
    }
    if let out = args.value("--json") { try writeJSON(json, to: out) }
    return 0
}
