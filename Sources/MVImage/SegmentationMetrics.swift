import MVFormats

/// Semantic-segmentation scores accumulated image by image in a confusion matrix: mean IoU,
/// pixel accuracy and per-class IoU over a whole set (pixel counts are summed over the set
/// before any division, as mmsegmentation and torchmetrics do).
///
/// Truth pixels labelled `ignoreLabel` (255) are not counted at all, whatever was predicted.
///
/// **Which classes the mean IoU averages:** the classes with a nonzero union over the whole
/// set, i.e. those that appear in the (non-ignored) truth or in the prediction of a
/// non-ignored pixel at least once. That is the mmsegmentation / torchmetrics rule (a class
/// with an empty union has IoU 0/0 and is left out) and the one of the ONNX Runtime anchor
/// script. A class that is only predicted, never true, counts with IoU 0; a class absent from
/// both has no IoU (`classIoU` gives nil, which maps to JSON null).
public struct SegmentationMetrics: Sendable, Equatable {
    /// The truth label of pixels that are not scored.
    public static let ignoreLabel: UInt8 = 255

    /// Labels are 0..<classes.
    public let classes: Int
    /// `confusion[truth * classes + predicted]`: how many scored pixels of class `truth` were
    /// predicted as `predicted`.
    public private(set) var confusion: [Int]
    /// Images added.
    public private(set) var images: Int = 0
    /// Pixels whose truth is `ignoreLabel`.
    public private(set) var ignoredPixels: Int = 0

    /// `classes` must be 1…255 (255 is the ignore label).
    public init(classes: Int) {
        precondition(classes >= 1 && classes <= 255, "SegmentationMetrics: \(classes) classes, must be 1…255")
        self.classes = classes
        confusion = [Int](repeating: 0, count: classes * classes)
    }

    /// Adds one image: `predicted` holds `width * height` class indices (row-major, as
    /// `truth.labels`), `name` is what errors call the mask (its path).
    ///
    /// Throws an `InputError`, adding nothing, when the mask's size is not `width`×`height`,
    /// when a truth label is neither below `classes` nor `ignoreLabel`, or when a prediction
    /// is not below `classes` (a model with more classes than the set). `predicted.count`
    /// must be `width * height`; a mismatch is a programming error.
    public mutating func add(predicted: UnsafeBufferPointer<Int32>, width: Int, height: Int, truth: LabelMap,
                             name: String) throws
    {
        precondition(predicted.count == width * height,
                     "SegmentationMetrics.add: \(predicted.count) predictions for a \(width)x\(height) image")
        guard truth.width == width, truth.height == height else {
            throw InputError("mask \(name) is \(truth.width)×\(truth.height) but its image is \(width)×\(height)")
        }
        let n = classes
        try truth.labels.withUnsafeBufferPointer { t in
            // Checked first, so that a refused image adds nothing.
            for i in t.indices where Int(t[i]) >= n && t[i] != Self.ignoreLabel {
                throw InputError("mask \(name) has label \(t[i]) at pixel (\(i % width), \(i / width)), but there are \(n) classes (labels 0…\(n - 1), \(Self.ignoreLabel) = ignore)")
            }
            for i in predicted.indices where predicted[i] < 0 || Int(predicted[i]) >= n {
                throw InputError("the prediction for mask \(name) has class \(predicted[i]) at pixel (\(i % width), \(i / width)), but there are \(n) classes")
            }
            var ignored = 0
            confusion.withUnsafeMutableBufferPointer { c in
                for i in t.indices {
                    let label = t[i]
                    if label == Self.ignoreLabel {
                        ignored += 1
                    } else {
                        c[Int(label) * n + Int(predicted[i])] += 1
                    }
                }
            }
            ignoredPixels += ignored
        }
        images += 1
    }

    public mutating func add(predicted: [Int32], width: Int, height: Int, truth: LabelMap, name: String) throws {
        try predicted.withUnsafeBufferPointer { try add(predicted: $0, width: width, height: height, truth: truth, name: name) }
    }

    /// Adds the counts of another accumulator over the same classes (e.g. one per thread).
    public mutating func merge(_ other: SegmentationMetrics) {
        precondition(other.classes == classes, "SegmentationMetrics.merge: \(other.classes) classes, not \(classes)")
        for i in confusion.indices { confusion[i] += other.confusion[i] }
        images += other.images
        ignoredPixels += other.ignoredPixels
    }

    /// Scored pixels of class `truth` predicted as `predicted`.
    public func count(truth: Int, predicted: Int) -> Int { confusion[truth * classes + predicted] }

    /// Scored pixels that are `c` in the truth and in the prediction.
    public func intersection(_ c: Int) -> Int { count(truth: c, predicted: c) }

    /// Scored pixels that are `c` in the truth or in the prediction.
    public func union(_ c: Int) -> Int {
        var truthOrPredicted = 0
        for k in 0..<classes { truthOrPredicted += count(truth: c, predicted: k) + count(truth: k, predicted: c) }
        return truthOrPredicted - intersection(c)
    }

    /// Pixels scored (not ignored).
    public var scoredPixels: Int { confusion.reduce(0, +) }

    /// Scored pixels predicted right.
    public var correctPixels: Int { (0..<classes).reduce(0) { $0 + intersection($1) } }

    /// IoU of each class, label 0 first; nil for a class with an empty union (absent from the
    /// truth and the predictions), which a JSON report writes as null.
    public var classIoU: [Double?] {
        (0..<classes).map { c in
            let u = union(c)
            return u == 0 ? nil : Double(intersection(c)) / Double(u)
        }
    }

    /// The classes `meanIoU` averages: those with a nonzero union.
    public var presentClasses: Int { classIoU.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// The mean of `classIoU` over the classes with a nonzero union; nil when no pixel was
    /// scored.
    public var meanIoU: Double? {
        let present = classIoU.compactMap { $0 }
        return present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
    }

    /// Correct scored pixels over scored pixels; nil when no pixel was scored.
    public var pixelAccuracy: Double? {
        let total = scoredPixels
        return total == 0 ? nil : Double(correctPixels) / Double(total)
    }
}

/// How often two label maps of the same images agree (e.g. the float and the int8 model's
/// predictions): over every pixel, whatever the truth says (ignored pixels included), pooled
/// over the set. With images all of one size (every prediction at the model's input size) the
/// fraction equals the mean of the per-image fractions, as the ONNX Runtime anchor reports it.
public struct LabelAgreement: Sendable, Equatable {
    /// Pixels whose two labels are equal.
    public private(set) var agreeing: Int = 0
    /// Pixels compared.
    public private(set) var pixels: Int = 0
    /// Images (pairs of label maps) added.
    public private(set) var images: Int = 0

    public init() {}

    /// Adds one image's two label maps, which must be the same length (the same image's
    /// predictions; a mismatch is a programming error).
    public mutating func add(_ a: UnsafeBufferPointer<Int32>, _ b: UnsafeBufferPointer<Int32>) {
        precondition(a.count == b.count, "LabelAgreement.add: label maps of \(a.count) and \(b.count) pixels")
        var same = 0
        for i in a.indices where a[i] == b[i] { same += 1 }
        agreeing += same
        pixels += a.count
        images += 1
    }

    public mutating func add(_ a: [Int32], _ b: [Int32]) {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in add(a, b) } }
    }

    /// Adds the counts of another accumulator.
    public mutating func merge(_ other: LabelAgreement) {
        agreeing += other.agreeing
        pixels += other.pixels
        images += other.images
    }

    /// Agreeing pixels over compared pixels; nil when nothing was compared.
    public var fraction: Double? { pixels == 0 ? nil : Double(agreeing) / Double(pixels) }
}
