import MVFormats
import MVImage

let evalCommand = Command(
    name: "eval",
    summary: "Measure accuracy (top-1/top-5, or mIoU for segmentation) on labelled images, optionally against a second model",
    usage: "--model DIR|FILE.mvq --images DIR [--compare DIR|FILE.mvq] [--limit N] [--size HxW] [--threads N] [--json OUT]",
    options: [
        OptionSpec(name: "--model", value: "PATH", help: "checkpoint directory (runs in float) or .mvq (runs in int8)"),
        OptionSpec(name: "--images", value: "DIR", help: "ImageFolder tree (one subfolder per class), or for a segmentation model a folder of images/ and masks/"),
        OptionSpec(name: "--compare", value: "PATH", help: "a second model: report both, the drop and the top-1 (segmentation: pixel) agreement"),
        OptionSpec(name: "--limit", value: "N", help: "use the first N images (in dataset order)"),
        OptionSpec(name: "--size", value: "HxW", help: "input size (default: the preprocessor's crop size)"),
        OptionSpec(name: "--threads", value: "N", help: "threads, one image per thread (default: number of cores)"),
        OptionSpec(name: "--json", value: "OUT", help: "write {images, top1, top5, predictions, per_class, skipped, compare?} ('-' for stdout); segmentation: {images, miou, pixel_accuracy, per_class_iou, skipped, compare?, miou_drop_points?, pixel_agreement?}"),
        ImageLoading.recoverOption,
        ImageLoading.skipOption,
    ],
    details: """
    Class folders are matched to the model's labels by name, else taken in sorted order.
    Segmentation: a mask is images/NAME's masks/NAME.png, a palette or greyscale PNG of the image's
    size whose values are classes (255: ignored). Images are resized to the model's input size and
    the label maps made at each image's own size. mIoU averages the classes present (in a mask or
    a prediction); pixel accuracy is over the pixels not ignored.
    """
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
    if SegmentationDataset.isSegmentationFolder(images) {
        return try evalSegmentation(args, model: model, other: other, images: images, size: size, threads: threads)
    }
    if model.graph.network.isDense {
        throw InputError("\(model.path) is a segmentation model: --images needs a folder with images/ and masks/")
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

/// `eval` on a segmentation set: mIoU, pixel accuracy and per-class IoU, and with `--compare` the
/// other model's, the mIoU drop and the pixel agreement.
func evalSegmentation(_ args: ParsedArguments, model: LoadedModel, other: LoadedModel?, images: String, size: (Int, Int)?,
                      threads: Int) throws -> Int32 {
    var dataset = try SegmentationDataset.load(path: images)
    if let limit = try args.value("--limit").map({ _ in try args.int("--limit", default: 0, range: 1...Int.max) }), limit < dataset.count {
        dataset = SegmentationDataset(root: dataset.root, classNames: dataset.classNames, items: Array(dataset.items.prefix(limit)),
                                      skipped: dataset.skipped)
    }
    if !dataset.classNames.isEmpty && dataset.classNames.count != model.labels.count {
        throw InputError("\(images): classes.txt names \(dataset.classNames.count) classes but \(model.path) has \(model.labels.count)")
    }
    let loading = ImageLoading(args)
    let r = try evaluateSegmentation(model, compare: other, dataset: dataset, size: size, threads: threads, label: "eval", images: loading)
    func line(_ m: LoadedModel, _ s: SegmentationScores) -> String {
        "\(m.path) (\(m.kindDescription)) on \(s.metrics.images) images: mIoU \(s.metrics.meanIoU.map(percent) ?? "n/a")  "
            + "pixel accuracy \(s.metrics.pixelAccuracy.map(percent) ?? "n/a")"
    }
    args.report(line(model, r.model) + "  (\(fixed(Double(r.model.metrics.images) / r.seconds, 1)) images/s)")
    var rows: [[String]] = [["class", "IoU"]]
    for (i, iou) in r.model.metrics.classIoU.enumerated() {
        rows.append([i < r.model.classNames.count ? r.model.classNames[i] : String(i), iou.map(percent) ?? "absent"])
    }
    if rows.count <= 51 { args.report(table(rows, rightAlign: [1])) }
    guard case var .object(members) = r.model.json else { preconditionFailure() }
    if let other, let o = r.compare, let agreement = r.agreement?.fraction {
        args.report(line(other, o))
        let drop = 100 * ((o.metrics.meanIoU ?? 0) - (r.model.metrics.meanIoU ?? 0))
        args.report("drop (compare − model): \(fixed(drop, 2)) points mIoU, pixel agreement \(percent(agreement))")
        members += [("compare", o.json), ("miou_drop_points", .number(drop)), ("pixel_agreement", .number(agreement))]
    }
    if let line = loading.summary { args.report(line) }
    members += loading.json
    if let out = args.value("--json") { try writeJSON(.object(members), to: out) }
    return 0
}
