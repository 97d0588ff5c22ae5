import MVQuant
import XCTest

/// Each observer picks the range it should on distributions with known answers.
final class RangeObserverTests: XCTestCase {
    /// Deterministic generator (xorshift) for reproducible samples.
    struct Random {
        var state: UInt64
        mutating func uniform() -> Double {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return (Double(state >> 11) + 0.5) / Double(1 << 53)
        }
        mutating func laplace(_ b: Double) -> Double {
            let u = uniform() - 0.5
            return -b * (u < 0 ? -1 : 1) * log(1 - 2 * abs(u))
        }
        mutating func cauchy() -> Double { tan(Double.pi * (uniform() - 0.5)) }
    }

    func observe(_ values: [Float]) -> RangeObserver {
        let o = RangeObserver()
        values.withUnsafeBufferPointer { o.observeRange($0) }
        o.beginHistogram()
        values.withUnsafeBufferPointer { o.observeHistogram($0) }
        return o
    }

    /// Values far outside the first pass's span (a float model with huge weights) land in the end
    /// bins instead of trapping on a bin position beyond Int; non-finite values are counted, not
    /// observed.
    func testExtremeAndNonFiniteValues() {
        let o = RangeObserver()
        let first: [Float] = [-1, 2, .nan, .infinity]
        first.withUnsafeBufferPointer { o.observeRange($0) }
        XCTAssertEqual(o.nonFiniteCount, 2)
        XCTAssertEqual(o.minimum, -1)
        XCTAssertEqual(o.maximum, 2)
        o.beginHistogram()
        let second: [Float] = [3e38, -3e38, 1e20, -1e20, 0.5, .nan]
        second.withUnsafeBufferPointer { o.observeHistogram($0) }
        XCTAssertEqual(o.histogram.reduce(0, +), 5)
        XCTAssertEqual(o.histogram[0], 2)
        XCTAssertEqual(o.histogram[RangeObserver.bins - 1], 2)
    }

    func testMinMaxIsTheObservedSpan() {
        let o = observe([-3, 0.5, 7, 2])
        let r = o.range(.minmax)
        XCTAssertEqual(r.lo, -3)
        XCTAssertEqual(r.hi, 7)
        // A one-sided tensor still includes zero so that zero is exactly representable.
        let p = observe([1, 2, 3]).range(.minmax)
        XCTAssertEqual(p.lo, 0)
    }

    /// For a Laplacian(b) and 256 levels the MSE-optimal symmetric clip is about 9.9·b (Banner et
    /// al., ACIQ), far inside the ~15·b extremes of a million samples.
    func testMSEClipsALaplacianNearTheAnalyticOptimum() {
        var rng = Random(state: 42)
        let values = (0..<1_000_000).map { _ in Float(rng.laplace(1)) }
        let o = observe(values)
        let r = o.range(.mse)
        XCTAssertGreaterThan(r.hi, 8.0)
        XCTAssertLessThan(r.hi, 12.0)
        XCTAssertGreaterThan(-r.lo, 8.0)
        XCTAssertLessThan(-r.lo, 12.0)
        XCTAssertLessThan(r.hi, o.maximum * 0.9)
    }

    /// On a heavy (Cauchy) tail the percentile observer returns the percentile, not the outliers.
    func testPercentileIgnoresAHeavyTail() {
        var rng = Random(state: 7)
        let values = (0..<200_000).map { _ in Float(max(min(rng.cauchy(), 1e5), -1e5)) }
        let o = observe(values)
        let r = o.range(.percentile, percentile: 99.0)
        // Cauchy quantiles: ±tan(π(0.99 − 0.5)) ≈ ±31.8; histogram bins are (max−min)/2048 wide.
        let bin = (o.maximum - o.minimum) / 2048
        XCTAssertEqual(Double(r.hi), 31.82, accuracy: Double(bin) + 3)
        XCTAssertEqual(Double(r.lo), -31.82, accuracy: Double(bin) + 3)
        XCTAssertGreaterThan(o.range(.minmax).hi, 1000)
    }

    /// Entropy calibration clips a Laplacian's tail but keeps most of its mass.
    func testEntropyClipsTheTail() {
        var rng = Random(state: 3)
        let values = (0..<500_000).map { _ in Float(abs(rng.laplace(1))) }
        let o = observe(values)
        let r = o.range(.entropy)
        XCTAssertEqual(r.lo, 0)
        XCTAssertGreaterThan(r.hi, 4)
        XCTAssertLessThan(r.hi, o.maximum)
    }

    /// A SiLU output (small negative part, long positive tail): the entropy window keeps the cheap
    /// negative side whole, clips the tail, and is never narrower than 256 of the histogram's 2048
    /// bins (in a narrower window the normalised KL no longer sees the clipping: a one-bin window
    /// scores 0).
    func testEntropyWindowOfAOneSidedTensor() {
        var rng = Random(state: 5)
        let values = (0..<500_000).map { _ in
            let x = rng.laplace(1)
            return Float(x / (1 + exp(-x)))
        }
        let o = observe(values)
        let r = o.range(.entropy)
        let span = Double(o.maximum - o.minimum)
        XCTAssertEqual(Double(r.lo), Double(o.minimum), accuracy: span / 2048 * 1.01)
        XCTAssertGreaterThanOrEqual(Double(r.hi - r.lo), span * 256 / 2048 * 0.999)
        XCTAssertLessThan(r.hi, o.maximum)
    }

    func testMergingObserversEqualsObservingTogether() {
        let a: [Float] = [-1, 2, 3], b: [Float] = [4, -5]
        let whole = observe(a + b)
        let x = RangeObserver(), y = RangeObserver()
        a.withUnsafeBufferPointer { x.observeRange($0) }
        b.withUnsafeBufferPointer { y.observeRange($0) }
        x.merge(y)
        XCTAssertEqual(x.minimum, whole.minimum)
        XCTAssertEqual(x.maximum, whole.maximum)
        // Second pass: histograms over the merged span, merged into a fresh observer.
        x.beginHistogram()
        let h1 = RangeObserver(), h2 = RangeObserver()
        h1.adoptSpan(of: x)
        h2.adoptSpan(of: x)
        a.withUnsafeBufferPointer { h1.observeHistogram($0) }
        b.withUnsafeBufferPointer { h2.observeHistogram($0) }
        let total = RangeObserver()
        total.merge(h1)
        total.merge(h2)
        XCTAssertEqual(total.histogram.reduce(0, +), 5)
        XCTAssertEqual(total.range(.percentile, percentile: 100).hi, whole.range(.percentile, percentile: 100).hi, accuracy: 0.01)
        XCTAssertGreaterThan(total.range(.percentile, percentile: 99).hi, 3)
    }

    /// Two channels interleaved as NHWC ([pixels][2]): channel 0 Laplacian(1), channel 1 the
    /// one-sided |Laplacian(0.1)|.
    func twoChannels(pixels: Int, seed: UInt64) -> [Float] {
        var rng = Random(state: seed)
        var values: [Float] = []
        for _ in 0..<pixels {
            values.append(Float(rng.laplace(1)))
            values.append(Float(abs(rng.laplace(0.1))))
        }
        return values
    }

    func observeChannels(_ parts: [[Float]], channels: Int) -> RangeObserver {
        let first = RangeObserver()
        for part in parts { part.withUnsafeBufferPointer { first.observeRange($0); first.observeChannels($0, channels: channels) } }
        first.beginHistogram()
        first.beginChannelHistograms()
        // One observer per part, as the calibrator's threads, merged.
        let merged = RangeObserver()
        for part in parts {
            let o = RangeObserver()
            o.adoptSpan(of: first)
            part.withUnsafeBufferPointer { o.observeHistogram($0); o.observeChannelHistograms($0, channels: channels) }
            merged.merge(o)
        }
        return merged
    }

    /// Per-channel tensors get their clipping range per channel from the channel's own histogram:
    /// each channel's tail clipped near its own MSE optimum (for 256 levels about 9.9·b either side
    /// of a Laplacian(b), Banner et al.; a little less on the one-sided channel, which spends every
    /// level on one side), whatever the other channel's scale; `minmax` (and an observer without
    /// channel histograms) keeps each channel's observed span.
    func testPerChannelRangesFromChannelHistograms() throws {
        let values = twoChannels(pixels: 200_000, seed: 11)
        let o = observeChannels([values], channels: 2)
        XCTAssertEqual(o.channelHistograms.count, 2 * RangeObserver.channelBins)
        XCTAssertEqual(o.channelHistograms.reduce(0, +), Double(values.count))
        let spans = try XCTUnwrap(o.channelRanges)
        let mse = try XCTUnwrap(o.channelRanges(.mse))
        XCTAssertGreaterThan(mse[0].hi, 7)
        XCTAssertLessThan(mse[0].hi, 12)
        XCTAssertLessThan(-mse[0].lo, -spans[0].lo * 0.9)
        XCTAssertGreaterThan(-mse[0].lo, 7)
        XCTAssertEqual(mse[1].lo, 0)
        XCTAssertGreaterThan(mse[1].hi, 0.6)
        XCTAssertLessThan(mse[1].hi, 1.2)
        XCTAssertLessThan(mse[1].hi, spans[1].hi * 0.9)
        // The 99.9th percentile of |Laplacian(0.1)| is 0.1·ln(1000) ≈ 0.69.
        let p = try XCTUnwrap(o.channelRanges(.percentile, percentile: 99.9))
        XCTAssertEqual(Double(p[1].hi), 0.69, accuracy: 0.03)
        let minmax = try XCTUnwrap(o.channelRanges(.minmax))
        XCTAssertEqual(minmax.map(\.lo), spans.map(\.lo))
        XCTAssertEqual(minmax.map(\.hi), spans.map(\.hi))
        // Without the second pass's channel histograms: the spans.
        let plain = RangeObserver()
        values.withUnsafeBufferPointer { plain.observeChannels($0, channels: 2) }
        XCTAssertEqual(try XCTUnwrap(plain.channelRanges(.mse)).map(\.hi), spans.map(\.hi))
    }

    /// Channel histograms merged from several observers equal one observer seeing everything.
    func testMergedChannelHistogramsEqualObservingTogether() {
        let values = twoChannels(pixels: 10_000, seed: 3)
        let half = values.count / 2
        let whole = observeChannels([values], channels: 2)
        let split = observeChannels([Array(values[..<half]), Array(values[half...])], channels: 2)
        XCTAssertEqual(split.channelHistograms, whole.channelHistograms)
        XCTAssertEqual(split.channelRanges(.mse)!.map(\.hi), whole.channelRanges(.mse)!.map(\.hi))
    }
}
