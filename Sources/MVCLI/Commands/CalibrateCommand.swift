import MVFormats
import MVImage
import MVKernels
import MVModel
import MVQuant

let calibrateCommand = Command(
    name: "calibrate",
    summary: "Quantise a float checkpoint to an int8 .mvq model using calibration images",
    usage: "[--model DIR] [--images DIR] [--output FILE.mvq] [--count N] [--method M] [--size HxW] [--eval DIR] [--json OUT]",
    options: [
        OptionSpec(name: "--model", value: "DIR", help: "float checkpoint (default: the embedded \(DefaultPaths.modelDirectory))"),
        OptionSpec(name: "--images", value: "DIR", help: "calibration images, ImageFolder tree or folder, or a segmentation folder's images/ (default: \(DefaultPaths.calibrationImages))"),
        OptionSpec(name: "--output", value: "FILE", help: "the .mvq to write (default: model.mvq), written atomically"),
        OptionSpec(name: "--count", value: "N", help: "calibration images, sampled evenly across classes (default 256)"),
        OptionSpec(name: "--method", value: "M", help: "range observer: \(CalibrationMethod.allCases.map(\.rawValue).joined(separator: ", ")) (default \(CalibrationMethod.recommended.rawValue))"),
        OptionSpec(name: "--percentile", value: "P", help: "percentile for --method percentile (default 99.99)"),
        OptionSpec(name: "--size", value: "HxW", help: "calibration input size (default: the preprocessor's crop size)"),
        OptionSpec(name: "--round-to-nearest", value: nil, help: "round weights to nearest instead of compensating each rounding error over the layer's other inputs"),
        OptionSpec(name: "--per-tensor", value: nil, help: "quantise every activation per tensor (no per-channel tensors around depthwise convolutions)"),
        OptionSpec(name: "--report-images", value: "N", help: "held-out images for the per-layer SQNR report (default 16, 0 to skip)"),
        OptionSpec(name: "--eval", value: "DIR", help: "after calibrating, measure int8 vs float accuracy on this labelled tree, or mIoU on a segmentation folder (default model: \(DefaultPaths.validationImages))"),
        OptionSpec(name: "--no-eval", value: nil, help: "skip the accuracy measurement"),
        OptionSpec(name: "--sensitivity", value: "N", help: "simulate the int8 model in float on N images (of --eval, else held-out ones) with groups of tensors given more bits (16, or 9/10/12 for all); print each group's top-1 agreement with float"),
        OptionSpec(name: "--threads", value: "N", help: "threads (default: number of cores)"),
        OptionSpec(name: "--json", value: "OUT", help: "write the report (ranges, SQNR, accuracy, skipped) as JSON ('-' for stdout)"),
        ImageLoading.recoverOption,
        ImageLoading.skipOption,
    ],
    details: """
    With no --model and --images it calibrates the embedded CIFAR-10 MobileViT-XXS on the embedded
    calibration set and ends with the int8-vs-float accuracy drop on the embedded validation set.
    Every image of --images and --eval is decoded once before calibrating, so a damaged file stops
    the run (or with --skip-damaged is left out) before anything is written.
    """
) { args in
    let usingDefault = args.value("--model") == nil
    let modelPath = try args.value("--model") ?? DefaultPaths.locate(DefaultPaths.modelDirectory)
    let imagesPath = try args.value("--images") ?? DefaultPaths.locate(DefaultPaths.calibrationImages)
    let output = args.value("--output") ?? "model.mvq"
    let count = try args.int("--count", default: 256, range: 1...1_000_000)
    let threads = try args.int("--threads", default: onlineCPUCount(), range: 1...256)
    let reportImages = try args.int("--report-images", default: 16, range: 0...100_000)
    let sensitivityCount = try args.int("--sensitivity", default: 0, range: 0...1_000_000)
    guard let method = CalibrationMethod(rawValue: args.value("--method") ?? CalibrationMethod.recommended.rawValue) else {
        throw UsageError("--method must be one of \(CalibrationMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    let percentile = Double(args.value("--percentile") ?? "99.99") ?? -1
    guard percentile > 50 && percentile <= 100 else { throw UsageError("--percentile expects a number in (50, 100]") }
    guard output.hasSuffix(".mvq") else { throw UsageError("--output should name a .mvq file") }
    if args.value("--output") == nil { try FileSystem.checkCanCreate(output) }  // CLI.main checks a given one
    let t0 = monotonicSeconds()

    let model = try LoadedModel.load(modelPath)
    guard case let .float(checkpoint) = model.kind else { throw InputError("\(modelPath): calibrate needs a float checkpoint directory") }
    let (h, w) = try args.size("--size") ?? model.defaultSize
    try checkInputSize(h, w)
    let pre = try model.preprocessor(size: args.value("--size") == nil ? nil : (h, w))
    let loading = ImageLoading(args)
    let all = try loading.screen(loadDataset([imagesPath], model: model), threads: threads)
    // The labelled set (for the accuracy drop, and for the sensitivity study even with
    // --no-eval) is listed now, so that a wrong --eval fails before calibrating rather than after
    // writing the model.
    let labelledPath = try args.value("--eval") ?? (usingDefault ? DefaultPaths.locate(DefaultPaths.validationImages) : nil)
    let wantsEval = !args.has("--no-eval")
    // A segmentation set (images/ and masks/) is scored by mIoU instead.
    let segmentationSet = try labelledPath.flatMap { path in
        wantsEval && SegmentationDataset.isSegmentationFolder(path) ? try SegmentationDataset.load(path: path) : nil
    }
    let labelled = try labelledPath.flatMap { path in
        (wantsEval || sensitivityCount > 0) && !SegmentationDataset.isSegmentationFolder(path)
            ? try loading.screen(loadLabelledDataset(path, model: model, for: "--eval"), threads: threads) : nil
    }
    let calibration = all.evenSample(count: count)
    Console.info("calibrating \(checkpoint.config.variantName) (\(modelPath)) on \(calibration.count) images from \(imagesPath) at \(h)×\(w), method \(method.rawValue)")

    var progress = Progress("calibration passes", total: 2 * calibration.count)
    var options = QuantizationOptions()
    options.method = method
    options.percentile = percentile
    options.perChannelActivations = !args.has("--per-tensor")
    options.errorCompensatingRounding = !args.has("--round-to-nearest")
    options.threads = threads
    let items = calibration.items
    let result = try quantize(checkpoint, height: h, width: w, imageCount: items.count, options: options,
                              calibrationInfo: [("source", .string(imagesPath))], image: { i in
        let x = try loading.requiredPixelValues(pre, path: items[i].path)
        guard x.height == h, x.width == w else { throw InputError("\(items[i].path): preprocessed to \(x.height)×\(x.width), expected \(h)×\(w)") }
        return x.values
    }, progress: { progress.update($0) })
    progress.update(2 * calibration.count)
    let compiler = result.compiler, secondMoments = result.secondMoments
    let info = compiler.model.calibration
    try compiler.model.write(to: output)
    let calibrationSeconds = monotonicSeconds() - t0
    let quantized = try LoadedModel.load(output)
    args.report("wrote \(output) (\(fixed(Double(quantized.fileSize) / 1_048_576, 2)) MiB) in \(fixed(calibrationSeconds, 1)) s")
    var report: [(String, JSON)] = [("model", .string(modelPath)), ("output", .string(output)), ("calibration", info),
                                    ("calibration_seconds", .number(calibrationSeconds)),
                                    ("model_bytes", .number(Double(quantized.fileSize)))]

    // Images not used for calibration (all of them if every image was).
    let used = Set(calibration.items.map(\.path))
    let heldOutItems = all.items.filter { !used.contains($0.path) }
    let heldOut = ImageDataset(classNames: all.classNames, classLabels: all.classLabels,
                               items: heldOutItems.isEmpty ? all.items : heldOutItems)

    // Per-layer SQNR on images not used for calibration.
    if reportImages > 0, case let .int8(qmodel) = quantized.kind {
        let picks = heldOut.evenSample(count: reportImages)
        let images = try picks.items.map { try loading.requiredPixelValues(pre, path: $0.path).values }
        let r = try QuantizationReport.measure(checkpoint: checkpoint, model: qmodel, images: images, height: h, width: w)
        args.report("\nper-layer SQNR (float vs int8) on \(r.images) held-out image(s), lowest first marked *:")
        let worst = Set(r.rows.sorted { $0.sqnr < $1.sqnr }.prefix(5).map(\.name))
        var rows: [[String]] = [["tensor", "SQNR dB", "scale", "zero point"]]
        for row in r.rows {
            rows.append([(worst.contains(row.name) ? "* " : "  ") + row.name.replacingPrefix("mobilevit.", with: ""),
                         fixed(row.sqnr, 1), formatScale(row.scale), String(row.zeroPoint)])
        }
        args.report(table(rows, rightAlign: [1, 2, 3, 4]))
        report.append(("sqnr", .array(r.rows.map { .object([("tensor", .string($0.name)), ("sqnr_db", .number($0.sqnr)),
                                                            ("scale", .number($0.scale)), ("zero_point", .number(Double($0.zeroPoint)))]) })))
    }

    // The accuracy drop on a labelled set: what users came for.
    if wantsEval, let evalPath = labelledPath, let dataset = labelled {
        let size: (Int, Int)? = args.value("--size") == nil ? nil : (h, w)
        let f = try evaluate(model, dataset: dataset, size: size, threads: threads, label: "float eval", images: loading)
        let q = try evaluate(quantized, dataset: dataset, size: size, threads: threads, label: "int8 eval", images: loading)
        let agreement = Double(zip(f.predictions, q.predictions).filter { $0 == $1 }.count) / Double(dataset.count)
        args.report("\naccuracy on \(dataset.count) images of \(evalPath):")
        args.report("  float top-1 \(percent(f.top1))  top-5 \(percent(f.top5))")
        args.report("  int8  top-1 \(percent(q.top1))  top-5 \(percent(q.top5))")
        args.report("  drop \(fixed(100 * (f.top1 - q.top1), 2)) points, top-1 agreement \(percent(agreement))")
        report.append(("eval", .object([("images", .number(Double(dataset.count))), ("float_top1", .number(f.top1)),
                                        ("int8_top1", .number(q.top1)), ("float_top5", .number(f.top5)),
                                        ("int8_top5", .number(q.top5)), ("drop_points", .number(100 * (f.top1 - q.top1))),
                                        ("agreement", .number(agreement))])))
    }
    if let set = segmentationSet {
        let size: (Int, Int)? = args.value("--size") == nil ? nil : (h, w)
        let r = try evaluateSegmentation(quantized, compare: model, dataset: set, size: size, threads: threads, label: "eval",
                                         images: loading)
        let q = r.model.metrics, f = r.compare!.metrics
        let drop = 100 * ((f.meanIoU ?? 0) - (q.meanIoU ?? 0)), agreement = r.agreement?.fraction ?? 0
        args.report("\nsegmentation on \(q.images) images of \(set.root):")
        args.report("  float mIoU \(f.meanIoU.map(percent) ?? "n/a")  pixel accuracy \(f.pixelAccuracy.map(percent) ?? "n/a")")
        args.report("  int8  mIoU \(q.meanIoU.map(percent) ?? "n/a")  pixel accuracy \(q.pixelAccuracy.map(percent) ?? "n/a")")
        args.report("  drop \(fixed(drop, 2)) points mIoU, pixel agreement \(percent(agreement))")
        report.append(("eval", .object([("images", .number(Double(q.images))), ("float", r.compare!.json), ("int8", r.model.json),
                                        ("miou_drop_points", .number(drop)), ("pixel_agreement", .number(agreement))])))
    }
    // Which tensors cost that drop: groups given more bits in a float simulation.
    if sensitivityCount > 0 {
        let source = labelled ?? heldOut
        let items = source.evenSample(count: sensitivityCount).items
        let weights = FakeQuantization.quantizedWeights(checkpoint, inputSecondMoments: secondMoments)
        let variants = SensitivityStudy.standardVariants(checkpoint.graph, quantised: Set(compiler.activations.keys))
        var progress = Progress("sensitivity", total: items.count)
        let (floatTop1, results) = try SensitivityStudy.run(
            checkpoint: checkpoint, weights: weights, activations: compiler.activations, variants: variants,
            count: items.count, height: h, width: w, threads: threads,
            image: { i in (try loading.requiredPixelValues(pre, path: items[i].path).values, items[i].label) },
            progress: { progress.update($0) })
        progress.update(items.count)
        args.report("\nsensitivity: the int8 model simulated in float on \(items.count) images" +
              (floatTop1.map { " (float top-1 \(percent($0)))" } ?? "") + "; top-1 agreement with float:")
        var rows: [[String]] = [["variant", "wider tensors", "bits", "agreement", "top-1"]]
        for r in results {
            rows.append([r.variant.name, String(r.variant.wide.count), r.variant.wide.isEmpty ? "-" : String(r.variant.wideBits),
                         percent(r.agreement), r.top1.map(percent) ?? "-"])
        }
        args.report(table(rows, rightAlign: [1, 2, 3, 4]))
        report.append(("sensitivity", .object([
            ("images", .number(Double(items.count))), ("float_top1", floatTop1.map { .number($0) } ?? .null),
            ("variants", .array(results.map { r in
                .object([("variant", .string(r.variant.name)), ("wide_tensors", .number(Double(r.variant.wide.count))), ("wide_bits", .number(Double(r.variant.wideBits))),
                         ("float_weights", .bool(r.variant.floatWeights)), ("agreement", .number(r.agreement)),
                         ("top1", r.top1.map { .number($0) } ?? .null)])
            })),
        ])))
    }
    if let line = loading.summary { args.report(line) }
    if let out = args.value("--json") { try writeJSON(.object(report + loading.json), to: out) }
    return 0
}

func percent(_ x: Double) -> String { fixed(100 * x, 2) + "%" }

func formatScale(_ s: Double) -> String {
    var e = 0, m = s
    while m < 1 && e > -30 { m *= 10; e -= 1 }
    while m >= 10 && e < 30 { m /= 10; e += 1 }
    return fixed(m, 3) + "e" + String(e)
}
