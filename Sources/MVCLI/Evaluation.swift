import MVFormats
import MVImage
import MVKernels
import MVModel

/// Accuracy of a model over a labelled dataset: top-1, top-5, per-class, predictions.
struct EvaluationResult {
    var images: Int
    var top1: Double
    var top5: Double
    /// One per dataset item, in order; -1 for a file left out by `--skip-damaged`.
    var predictions: [Int]
    var perClass: [(name: String, correct: Int, total: Int)]
    var seconds: Double

    var json: JSON {
        .object([
            ("images", .number(Double(images))), ("top1", .number(top1)), ("top5", .number(top5)),
            ("seconds", .number(seconds)),
            ("per_class", .array(perClass.map { .object([("class", .string($0.name)), ("correct", .number(Double($0.correct))),
                                                         ("total", .number(Double($0.total)))]) })),
            ("predictions", .array(predictions.map { .number(Double($0)) })),
        ])
    }
}

/// Runs `model` over every labelled image of `dataset`, spreading images over `threads` threads
/// (one single-threaded runner each). Labels must already be in the model's label space. Files
/// `images` leaves out (`--skip-damaged`) count nowhere: `images`, the accuracies and the
/// per-class totals are over the files evaluated.
func evaluate(_ model: LoadedModel, dataset: ImageDataset, size: (Int, Int)?, threads: Int, label: String,
              images: ImageLoading) throws -> EvaluationResult
{
    let pre = try model.checkedPreprocessor(size: size)
    let n = dataset.count
    guard n > 0 else { throw InputError("no images to evaluate") }
    let runners = try (0..<threads).map { _ in try model.makeRunner(threads: 1) }
    var predictions = [Int](repeating: -1, count: n)
    var top5Hits = [Bool](repeating: false, count: n)
    var progress = Progress(label, total: n)
    let t0 = monotonicSeconds()
    let pool = ThreadPool(threads: threads)
    try predictions.withUnsafeMutableBufferPointer { preds in
        try top5Hits.withUnsafeMutableBufferPointer { hits in
            try pool.parallelForThrowing(n, progress: { progress.update($0) }) { i, worker in
                let item = dataset.items[i]
                guard let x = try images.pixelValues(pre, path: item.path) else { return }
                let logits = try x.values.withUnsafeBufferPointer {
                    try runners[worker].finiteLogits(nchw: $0, height: x.height, width: x.width)
                }
                let order = logits.indices.sorted { logits[$0] > logits[$1] }
                preds[i] = order[0]
                if let label = item.label { hits[i] = order.prefix(5).contains(label) }
            }
        }
    }
    progress.update(n)
    var perClass = dataset.classNames.map { (name: $0, correct: 0, total: 0) }
    var correct = 0
    for (i, item) in dataset.items.enumerated() where predictions[i] >= 0 {
        guard let label = item.label else { continue }
        let hit = predictions[i] == label
        if hit { correct += 1 }
        if let k = dataset.classLabels.firstIndex(of: label), k < perClass.count {
            perClass[k].total += 1
            if hit { perClass[k].correct += 1 }
        }
    }
    let evaluated = predictions.filter { $0 >= 0 }.count
    guard evaluated > 0 else { throw InputError("no images to evaluate: every file was skipped") }
    let labelled = dataset.items.indices.filter { dataset.items[$0].label != nil && predictions[$0] >= 0 }.count
    return EvaluationResult(images: evaluated, top1: labelled > 0 ? Double(correct) / Double(labelled) : 0,
                            top5: labelled > 0 ? Double(top5Hits.filter { $0 }.count) / Double(labelled) : 0,
                            predictions: predictions, perClass: perClass, seconds: monotonicSeconds() - t0)
}

/// A labelled ImageFolder tree for measuring accuracy, or a clear error (an unlabelled folder
/// would score 0% without saying why).
func loadLabelledDataset(_ path: String, model: LoadedModel, for purpose: String) throws -> ImageDataset {
    let dataset = try loadDataset([path], model: model)
    guard dataset.isLabelled else { throw InputError("\(path): \(purpose) needs an ImageFolder tree (one subfolder per class)") }
    return dataset
}

/// Loads an image dataset (folder tree or files) and maps its class folders onto the model's labels.
func loadDataset(_ paths: [String], model: LoadedModel) throws -> ImageDataset {
    // A segmentation folder (images/ beside masks/) gives its images.
    let paths = paths.map { p in
        FileSystem.isDirectory(FileSystem.join(p, "images")) && FileSystem.isDirectory(FileSystem.join(p, "masks"))
            ? FileSystem.join(p, "images") : p
    }
    var dataset = paths.count == 1 ? try ImageDataset.load(path: paths[0]) : try ImageDataset.files(paths)
    if dataset.isLabelled {
        let id2label = Dictionary(uniqueKeysWithValues: model.labels.enumerated().map { ($0.offset, $0.element) })
        if let matched = try? dataset.matchLabels(id2label: id2label) {
            dataset = matched
        } else {
            // Folder names are not the model's label names: classes sorted by name give the index.
            guard dataset.classNames.count <= model.labels.count else {
                throw InputError("\(paths[0]): \(dataset.classNames.count) class folders but the model has \(model.labels.count) labels")
            }
            Console.info("note: class folder names do not match the model's labels; using folder order as label index")
        }
    }
    guard dataset.count > 0 else { throw InputError("\(paths.joined(separator: " ")): no image files found") }
    return dataset
}
