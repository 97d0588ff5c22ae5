import MVFormats
import MVImage
import MVKernels
import MVModel

/// One model's scores over a segmentation set.
struct SegmentationScores {
    var metrics: SegmentationMetrics
    var classNames: [String]

    var json: JSON {
        let perClass = metrics.classIoU.enumerated().map { (i, iou) -> (String, JSON) in
            (i < classNames.count ? classNames[i] : String(i), iou.map { .number($0) } ?? .null)
        }
        return .object([
            ("images", .number(Double(metrics.images))),
            ("miou", metrics.meanIoU.map { .number($0) } ?? .null),
            ("pixel_accuracy", metrics.pixelAccuracy.map { .number($0) } ?? .null),
            ("per_class_iou", .object(perClass)),
        ])
    }
}

struct SegmentationEvaluation {
    var model: SegmentationScores
    var compare: SegmentationScores?
    /// Pixels whose labels agree between the two models (over every pixel of every image).
    var agreement: LabelAgreement?
    var seconds: Double
}

/// The image pipeline of a segmentation model: every image resized (not cropped) to the model's
/// input size, `size` or the preprocessor's crop size, so the label map, made at the image's own
/// size, covers the whole mask.
func segmentationPreprocessor(_ model: LoadedModel, size: (Int, Int)?) throws -> Preprocessor {
    let (h, w) = size ?? model.defaultSize
    try checkInputSize(h, w)
    return try model.preprocessor(size: (h, w))
}

/// Runs `model` (and `compare`, on the same images in the same pass) over a segmentation set:
/// each image's label map at the image's size against its mask, images spread over `threads`
/// threads. Files refused under `--skip-damaged` (image or mask) count nowhere.
func evaluateSegmentation(_ model: LoadedModel, compare other: LoadedModel?, dataset: SegmentationDataset,
                          size: (Int, Int)?, threads: Int, label: String, images: ImageLoading) throws -> SegmentationEvaluation
{
    let n = dataset.count
    guard n > 0 else { throw InputError("\(dataset.root): no images to evaluate") }
    let classes = model.labels.count
    let pre = try segmentationPreprocessor(model, size: size)
    let otherPre = try other.map { try segmentationPreprocessor($0, size: size ?? model.defaultSize) }
    let runners = try (0..<threads).map { _ in try model.makeRunner(threads: 1) }
    let otherRunners = try (0..<threads).map { _ in try other?.makeRunner(threads: 1) }
    guard runners[0].isDense, otherRunners[0]?.isDense ?? true else {
        let which = runners[0].isDense ? other!.path : model.path
        throw InputError("\(which): not a segmentation model; \(dataset.root) is a segmentation set (images/ and masks/)")
    }
    var metrics = [SegmentationMetrics](repeating: SegmentationMetrics(classes: classes), count: threads)
    var otherMetrics = metrics
    var agreements = [LabelAgreement](repeating: LabelAgreement(), count: threads)
    var progress = Progress(label, total: n)
    let t0 = monotonicSeconds()
    try metrics.withUnsafeMutableBufferPointer { metrics in
        try otherMetrics.withUnsafeMutableBufferPointer { otherMetrics in
            try agreements.withUnsafeMutableBufferPointer { agreements in
                try ThreadPool(threads: threads).parallelForThrowing(n, progress: { progress.update($0) }) { i, worker in
                    let item = dataset.items[i]
                    guard let image = try images.decode(item.image), let mask = try images.decodeLabels(item.mask) else { return }
                    guard mask.width == image.width, mask.height == image.height else {
                        throw InputError("mask \(item.mask) is \(mask.width)×\(mask.height) but its image is \(image.width)×\(image.height)")
                    }
                    func labels(_ runner: ModelRunner, _ pre: Preprocessor) throws -> [Int32] {
                        let x: (values: [Float], height: Int, width: Int)
                        do { x = try pre.pixelValues(for: image) } catch let e as InputError { throw e.inFile(item.image) }
                        return try x.values.withUnsafeBufferPointer {
                            try runner.segment(nchw: $0, height: x.height, width: x.width, labelSize: (image.height, image.width)).labels
                        }
                    }
                    let mine = try labels(runners[worker], pre)
                    try metrics[worker].add(predicted: mine, width: image.width, height: image.height, truth: mask, name: item.mask)
                    if let runner = otherRunners[worker], let otherPre {
                        let theirs = try labels(runner, otherPre)
                        try otherMetrics[worker].add(predicted: theirs, width: image.width, height: image.height, truth: mask,
                                                     name: item.mask)
                        agreements[worker].add(mine, theirs)
                    }
                }
            }
        }
    }
    progress.update(n)
    for k in 1..<threads {
        metrics[0].merge(metrics[k])
        otherMetrics[0].merge(otherMetrics[k])
        agreements[0].merge(agreements[k])
    }
    guard metrics[0].images > 0 else { throw InputError("no images to evaluate: every file was skipped") }
    let names = dataset.classNames.count == classes ? dataset.classNames : model.labels
    return SegmentationEvaluation(model: SegmentationScores(metrics: metrics[0], classNames: names),
                                  compare: other.map { _ in SegmentationScores(metrics: otherMetrics[0], classNames: names) },
                                  agreement: other == nil ? nil : agreements[0], seconds: monotonicSeconds() - t0)
}
