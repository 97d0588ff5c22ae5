import MVFormats
import MVImage
import XCTest

final class SegmentationMetricsTests: XCTestCase {
    /// 3 classes, one 4×2 image with one ignored pixel (predicted 2, which must not count).
    ///
    ///     truth  0 0 1 1      predicted  0 1 1 1
    ///            2 ∅ 1 0                 1 2 1 0
    ///
    /// Scored pairs (truth, predicted): (0,0)×2 (0,1) (1,1)×3 (2,1).
    /// Class 0: ∩ 2, ∪ 3+2−2 = 3.  Class 1: ∩ 3, ∪ 3+5−3 = 5.  Class 2: ∩ 0, ∪ 1+0−0 = 1.
    /// mIoU (2/3 + 3/5 + 0) / 3 = 19/45; pixel accuracy 5/7.
    func testHandComputedExample() throws {
        var m = SegmentationMetrics(classes: 3)
        let truth = LabelMap(width: 4, height: 2, labels: [0, 0, 1, 1, 2, 255, 1, 0])
        try m.add(predicted: [0, 1, 1, 1, 1, 2, 1, 0], width: 4, height: 2, truth: truth, name: "a.png")
        XCTAssertEqual(m.images, 1)
        XCTAssertEqual(m.ignoredPixels, 1)
        XCTAssertEqual(m.scoredPixels, 7)
        XCTAssertEqual(m.correctPixels, 5)
        XCTAssertEqual(m.confusion, [2, 1, 0, 0, 3, 0, 0, 1, 0])
        XCTAssertEqual(m.count(truth: 2, predicted: 1), 1)
        XCTAssertEqual((0..<3).map(m.intersection), [2, 3, 0])
        XCTAssertEqual((0..<3).map(m.union), [3, 5, 1])
        XCTAssertEqual(m.classIoU.count, 3)
        XCTAssertEqual(m.classIoU[0]!, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m.classIoU[1]!, 0.6, accuracy: 1e-12)
        XCTAssertEqual(m.classIoU[2]!, 0.0)
        XCTAssertEqual(m.presentClasses, 3)
        XCTAssertEqual(m.meanIoU!, 19.0 / 45.0, accuracy: 1e-12)
        XCTAssertEqual(m.pixelAccuracy!, 5.0 / 7.0, accuracy: 1e-12)
    }

    /// 4 classes over two images: class 2 appears nowhere (no IoU, left out of the mean),
    /// class 3 is only predicted (IoU 0, in the mean).
    ///
    ///     image A (3×1)  truth 0 0 1   predicted 0 3 1
    ///     image B (2×1)  truth 1 ∅     predicted 1 0
    ///
    /// Class 0: ∩ 1, ∪ 2 (the 0 predicted on the ignored pixel does not count) → 1/2.
    /// Class 1: ∩ 2, ∪ 2 → 1.  Class 2: ∪ 0 → none.  Class 3: ∩ 0, ∪ 1 → 0.
    /// mIoU (1/2 + 1 + 0) / 3 = 1/2; pixel accuracy 3/4.
    func testAbsentAndOnlyPredictedClasses() throws {
        var m = SegmentationMetrics(classes: 4)
        try m.add(predicted: [0, 3, 1], width: 3, height: 1, truth: LabelMap(width: 3, height: 1, labels: [0, 0, 1]), name: "a.png")
        try m.add(predicted: [1, 0], width: 2, height: 1, truth: LabelMap(width: 2, height: 1, labels: [1, 255]), name: "b.png")
        XCTAssertEqual(m.images, 2)
        XCTAssertEqual(m.ignoredPixels, 1)
        XCTAssertEqual(m.classIoU, [0.5, 1.0, nil, 0.0])
        XCTAssertEqual(m.presentClasses, 3)
        XCTAssertEqual(m.meanIoU, 0.5)
        XCTAssertEqual(m.pixelAccuracy, 0.75)
        // Absent classes map to JSON null.
        let json = JSON.array(m.classIoU.map { $0.map(JSON.number) ?? .null })
        XCTAssertEqual(json, .array([.number(0.5), .number(1), .null, .number(0)]))
    }

    func testNothingScored() throws {
        var m = SegmentationMetrics(classes: 2)
        XCTAssertNil(m.meanIoU)
        XCTAssertNil(m.pixelAccuracy)
        XCTAssertEqual(m.classIoU, [nil, nil])
        try m.add(predicted: [1, 0], width: 1, height: 2, truth: LabelMap(width: 1, height: 2, labels: [255, 255]), name: "all-ignored.png")
        XCTAssertEqual(m.ignoredPixels, 2)
        XCTAssertEqual(m.scoredPixels, 0)
        XCTAssertNil(m.meanIoU)
        XCTAssertNil(m.pixelAccuracy)
        XCTAssertEqual(m.presentClasses, 0)
    }

    /// Size mismatches, out-of-range truth labels and predictions are one-line errors naming
    /// the mask, and add nothing.
    func testErrors() throws {
        var m = SegmentationMetrics(classes: 4)
        try m.add(predicted: [0, 1], width: 2, height: 1, truth: LabelMap(width: 2, height: 1, labels: [0, 1]), name: "ok.png")
        let before = m
        let small = LabelMap(width: 100, height: 80, labels: [UInt8](repeating: 0, count: 8000))
        let predicted = [Int32](repeating: 0, count: 128 * 128)
        XCTAssertThrowsError(try m.add(predicted: predicted, width: 128, height: 128, truth: small, name: "masks/x.png")) { error in
            XCTAssertEqual("\(error)", "mask masks/x.png is 100×80 but its image is 128×128")
            XCTAssertTrue(error is InputError)
        }
        // Label 7 with 4 classes, at (1, 1); the pixels before it are fine.
        let bad = LabelMap(width: 2, height: 2, labels: [0, 255, 3, 7])
        XCTAssertThrowsError(try m.add(predicted: [0, 0, 0, 0], width: 2, height: 2, truth: bad, name: "masks/y.png")) { error in
            XCTAssertEqual("\(error)", "mask masks/y.png has label 7 at pixel (1, 1), but there are 4 classes (labels 0…3, 255 = ignore)")
            XCTAssertTrue(error is InputError)
        }
        let good = LabelMap(width: 2, height: 2, labels: [0, 255, 3, 1])
        XCTAssertThrowsError(try m.add(predicted: [0, 0, 4, 0], width: 2, height: 2, truth: good, name: "masks/z.png")) { error in
            XCTAssertEqual("\(error)", "the prediction for mask masks/z.png has class 4 at pixel (0, 1), but there are 4 classes")
        }
        XCTAssertThrowsError(try m.add(predicted: [0, -1, 0, 0], width: 2, height: 2, truth: good, name: "masks/z.png"))
        XCTAssertEqual(m, before)
    }

    /// Random sets against the anchor script's per-class formula, and merging accumulators.
    func testAgainstDirectFormula() throws {
        var random = TestRandom(state: 21)
        let classes = 6
        var whole = SegmentationMetrics(classes: classes)
        var halves = [SegmentationMetrics(classes: classes), SegmentationMetrics(classes: classes)]
        var intersection = [Int](repeating: 0, count: classes)
        var union = [Int](repeating: 0, count: classes)
        var correct = 0, scored = 0
        for image in 0..<10 {
            let (w, h) = (1 + random.below(20), 1 + random.below(20))
            // Class 4 never appears in the truth, class 5 nowhere.
            let truth = (0..<(w * h)).map { _ in random.below(5) == 0 ? UInt8(255) : UInt8(random.below(4)) }
            let predicted = (0..<(w * h)).map { _ in Int32(random.below(5)) }
            let map = LabelMap(width: w, height: h, labels: truth)
            try whole.add(predicted: predicted, width: w, height: h, truth: map, name: "\(image).png")
            try halves[image % 2].add(predicted: predicted, width: w, height: h, truth: map, name: "\(image).png")
            for i in 0..<(w * h) where truth[i] != 255 {
                scored += 1
                if Int32(truth[i]) == predicted[i] { correct += 1 }
                for c in 0..<classes {
                    let t = Int(truth[i]) == c, p = Int(predicted[i]) == c
                    if t && p { intersection[c] += 1 }
                    if t || p { union[c] += 1 }
                }
            }
        }
        let expectedIoU: [Double?] = (0..<classes).map { union[$0] == 0 ? nil : Double(intersection[$0]) / Double(union[$0]) }
        XCTAssertEqual(whole.classIoU, expectedIoU)
        XCTAssertNil(whole.classIoU[5])
        XCTAssertEqual(whole.classIoU[4], 0)
        let present = expectedIoU.compactMap { $0 }
        XCTAssertEqual(whole.meanIoU!, present.reduce(0, +) / Double(present.count), accuracy: 1e-12)
        XCTAssertEqual(whole.pixelAccuracy!, Double(correct) / Double(scored), accuracy: 1e-12)
        var merged = halves[0]
        merged.merge(halves[1])
        XCTAssertEqual(merged, whole)
    }

    func testLabelAgreement() {
        var a = LabelAgreement()
        XCTAssertNil(a.fraction)
        a.add([0, 1, 2, 3], [0, 1, 1, 3])
        XCTAssertEqual(a.fraction, 0.75)
        var b = LabelAgreement()
        b.add([5], [5])
        a.merge(b)
        XCTAssertEqual(a.agreeing, 4)
        XCTAssertEqual(a.pixels, 5)
        XCTAssertEqual(a.images, 2)
        XCTAssertEqual(a.fraction, 0.8)
    }
}
