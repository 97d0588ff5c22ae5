/// How an activation's quantisation range is chosen from calibration statistics.
public enum CalibrationMethod: String, CaseIterable, Sendable {
    /// The observed minimum and maximum.
    case minmax
    /// Clip both tails at a percentile (default 99.99%).
    case percentile
    /// The range minimising the expected squared quantisation error (clipping + rounding).
    case mse
    /// TensorRT-style entropy calibration: the clipping window that minimises the KL divergence
    /// between the float histogram and its 256-level quantised version.
    case entropy

    /// The default of `mvquant calibrate`: the method that measured best on the embedded
    /// CIFAR-10 model (README, "Measured results").
    public static let recommended: CalibrationMethod = .mse
}

/// Statistics of one activation tensor over the calibration set. Two passes: the first records
/// the minimum and maximum, the second a histogram over that span, from which every method
/// picks its range.
public final class RangeObserver: @unchecked Sendable {
    public static let bins = 2048
    public private(set) var minimum = Float.infinity
    public private(set) var maximum = -Float.infinity
    public private(set) var histogram: [Double] = []
    public private(set) var histogramLow: Float = 0
    public private(set) var histogramHigh: Float = 0
    /// Per-channel minimum and maximum (channels innermost, as NHWC tensors are observed).
    public private(set) var channelMinimum: [Float] = []
    public private(set) var channelMaximum: [Float] = []
    /// Second pass, per-channel tensors only: a histogram of `channelBins` bins per channel over
    /// that channel's [min(lo, 0), max(hi, 0)], [channels][channelBins]; empty when not collected.
    public private(set) var channelHistograms: [Double] = []
    public static let channelBins = 256
    /// Σ x xᵀ over the observed rows ([channels][channels], row-major) and the number of rows: the
    /// input statistics of error-compensating weight rounding. Only for tensors that feed a GEMM,
    /// and only when asked for (second pass).
    public private(set) var rowProducts: [Double] = []
    public private(set) var rowCount = 0
    /// NaN or infinite values seen in the first pass (left out of the statistics; a float model
    /// that produces them cannot be calibrated).
    public private(set) var nonFiniteCount = 0
    /// Position of the tensor in the executor's order of reporting (set by the calibrator), so a
    /// problem is reported at the first tensor it shows in.
    public var sequence = 0

    public init() {}

    /// E[x xᵀ] over the observed rows, or nil when not collected.
    public var secondMoment: [Double]? {
        guard rowCount > 0 else { return nil }
        let inverse = 1 / Double(rowCount)
        return rowProducts.map { $0 * inverse }
    }

    /// Second pass: accumulates x xᵀ for every row of `values` ([rows][channels]).
    public func observeRowProducts(_ values: UnsafeBufferPointer<Float>, channels c: Int) {
        guard c > 0, values.count % c == 0 else { return }
        if rowProducts.count != c * c { rowProducts = [Double](repeating: 0, count: c * c); rowCount = 0 }
        let rows = values.count / c
        var row = [Double](repeating: 0, count: c)
        rowProducts.withUnsafeMutableBufferPointer { s in
            for r in 0..<rows {
                var finite = true
                for i in 0..<c {
                    row[i] = Double(values[r * c + i])
                    if !row[i].isFinite { finite = false }
                }
                guard finite else { continue }
                // Upper triangle only; mirrored when merged.
                for i in 0..<c where row[i] != 0 {
                    let xi = row[i]
                    for j in i..<c { s[i * c + j] += xi * row[j] }
                }
            }
        }
        rowCount += rows
    }

    /// Copies the upper triangle of the row products onto the lower one.
    func symmetrizeRowProducts() {
        let n = Int(Double(rowProducts.count).squareRoot())
        for i in 0..<n {
            for j in 0..<i { rowProducts[i * n + j] = rowProducts[j * n + i] }
        }
    }

    /// First pass, per channel: `values` is [..., channels] with channels innermost.
    public func observeChannels(_ values: UnsafeBufferPointer<Float>, channels: Int) {
        guard channels > 0, values.count % channels == 0 else { return }
        if channelMinimum.count != channels {
            channelMinimum = [Float](repeating: .infinity, count: channels)
            channelMaximum = [Float](repeating: -.infinity, count: channels)
        }
        channelMinimum.withUnsafeMutableBufferPointer { lo in
            channelMaximum.withUnsafeMutableBufferPointer { hi in
                var i = 0
                while i < values.count {
                    for c in 0..<channels {
                        let v = values[i + c]
                        if v.isFinite {
                            lo[c] = min(lo[c], v)
                            hi[c] = max(hi[c], v)
                        }
                    }
                    i += channels
                }
            }
        }
    }

    /// Per-channel [lo, hi] (each including 0), or nil when channels were not observed.
    public var channelRanges: [(lo: Float, hi: Float)]? {
        guard !channelMinimum.isEmpty else { return nil }
        return zip(channelMinimum, channelMaximum).map {
            (min($0.0.isFinite ? $0.0 : 0, 0), max($0.1.isFinite ? $0.1 : 0, 0))
        }
    }

    /// Per-channel ranges chosen by `method` from the channel histograms, by the same rule as the
    /// tensor's `range` (without histograms: each channel's observed [lo, hi]). `minmax` keeps each
    /// span, and so does `entropy`, whose window is never narrower than 256 bins, all that a
    /// channel has (so it is not searched). Each channel is judged alone, as if it had 256 levels of its own: the shared
    /// zero point is chosen afterwards (`QuantParams(channelRanges:)`).
    public func channelRanges(_ method: CalibrationMethod, percentile: Double = 99.99) -> [(lo: Float, hi: Float)]? {
        guard let spans = channelRanges else { return nil }
        let bins = Self.channelBins
        guard channelHistograms.count == spans.count * bins, method != .entropy else { return spans }
        return spans.indices.map { c in
            let span = spans[c]
            guard span.hi > span.lo else { return span }
            let stats = HistogramStatistics(Array(channelHistograms[(c * bins)..<((c + 1) * bins)]),
                                            low: Double(span.lo), high: Double(span.hi))
            guard stats.total > 0 else { return span }
            return stats.clippingRange(method, percentile: percentile) ?? span
        }
    }

    /// Starts the per-channel histograms of the second pass (after the first pass's channel spans
    /// are merged).
    public func beginChannelHistograms() {
        channelHistograms = [Double](repeating: 0, count: channelMinimum.count * Self.channelBins)
    }

    /// Second pass, per channel: `values` is [..., channels], each value counted in its channel's
    /// histogram (clamped to the channel's span).
    public func observeChannelHistograms(_ values: UnsafeBufferPointer<Float>, channels: Int) {
        let bins = Self.channelBins
        guard channels == channelMinimum.count, channelHistograms.count == channels * bins, values.count % channels == 0 else { return }
        let spans = channelRanges!
        let lows = spans.map(\.lo)
        let scales = spans.map { $0.hi > $0.lo ? Float(bins) / ($0.hi - $0.lo) : 0 }
        let last = bins - 1
        channelHistograms.withUnsafeMutableBufferPointer { h in
            var i = 0
            while i < values.count {
                for c in 0..<channels {
                    let v = values[i + c]
                    guard v.isFinite else { continue }
                    let x = (v - lows[c]) * scales[c]
                    let b = x >= 0 ? (x < Float(last) ? Int(x) : last) : 0
                    h[c * bins + b] += 1
                }
                i += channels
            }
        }
    }

    /// First pass.
    public func observeRange(_ values: UnsafeBufferPointer<Float>) {
        var lo = minimum, hi = maximum
        var nonFinite = 0
        for v in values {
            guard v.isFinite else {
                nonFinite += 1
                continue
            }
            lo = min(lo, v)
            hi = max(hi, v)
        }
        minimum = lo
        maximum = hi
        nonFiniteCount += nonFinite
    }

    /// Starts the second pass: a histogram over [min(min, 0), max(max, 0)] so zero is inside.
    public func beginHistogram() {
        histogramLow = min(minimum.isFinite ? minimum : 0, 0)
        histogramHigh = max(maximum.isFinite ? maximum : 0, 0)
        if histogramHigh - histogramLow < 1e-12 { histogramHigh = histogramLow + 1e-6 }
        histogram = [Double](repeating: 0, count: Self.bins)
    }

    /// Takes the min/max and histogram span of `other` (a merged first pass) with an empty histogram.
    public func adoptSpan(of other: RangeObserver) {
        minimum = other.minimum
        maximum = other.maximum
        channelMinimum = other.channelMinimum
        channelMaximum = other.channelMaximum
        histogramLow = other.histogramLow
        histogramHigh = other.histogramHigh
        histogram = [Double](repeating: 0, count: Self.bins)
        channelHistograms = [Double](repeating: 0, count: other.channelHistograms.count)
        rowProducts = []
        rowCount = 0
    }

    public func observeHistogram(_ values: UnsafeBufferPointer<Float>) {
        let scale = Float(Self.bins) / (histogramHigh - histogramLow)
        let last = Self.bins - 1
        histogram.withUnsafeMutableBufferPointer { h in
            for v in values where v.isFinite {
                // Clamped as a float before the conversion: with values far outside the span
                // (huge weights) the bin position overflows Int, or v − low is infinite.
                let x = (v - histogramLow) * scale
                let i = x >= 0 ? (x < Float(last) ? Int(x) : last) : 0
                h[i] += 1
            }
        }
    }

    /// Merges another observer's statistics (same pass) into this one.
    public func merge(_ other: RangeObserver) {
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        nonFiniteCount += other.nonFiniteCount
        if !other.channelMinimum.isEmpty {
            if channelMinimum.isEmpty {
                channelMinimum = other.channelMinimum
                channelMaximum = other.channelMaximum
            } else if channelMinimum.count == other.channelMinimum.count {
                for c in 0..<channelMinimum.count {
                    channelMinimum[c] = min(channelMinimum[c], other.channelMinimum[c])
                    channelMaximum[c] = max(channelMaximum[c], other.channelMaximum[c])
                }
            }
        }
        if !other.channelHistograms.isEmpty {
            if channelHistograms.isEmpty {
                channelHistograms = other.channelHistograms
            } else {
                precondition(channelHistograms.count == other.channelHistograms.count, "channel histograms of different widths merged")
                for i in 0..<channelHistograms.count { channelHistograms[i] += other.channelHistograms[i] }
            }
        }
        if other.rowCount > 0 {
            if rowCount == 0 {
                rowProducts = other.rowProducts
            } else {
                precondition(rowProducts.count == other.rowProducts.count, "row products of different widths merged")
                for i in 0..<rowProducts.count { rowProducts[i] += other.rowProducts[i] }
            }
            rowCount += other.rowCount
        }
        if !other.histogram.isEmpty {
            if histogram.isEmpty {
                histogram = other.histogram
                histogramLow = other.histogramLow
                histogramHigh = other.histogramHigh
            } else {
                precondition(histogramLow == other.histogramLow && histogramHigh == other.histogramHigh,
                             "histograms merged over different spans")
                for i in 0..<histogram.count { histogram[i] += other.histogram[i] }
            }
        }
    }

    /// The clipping range [lo, hi] (lo ≤ 0 ≤ hi) chosen by `method`.
    public func range(_ method: CalibrationMethod, percentile: Double = 99.99) -> (lo: Float, hi: Float) {
        let lo0 = min(minimum.isFinite ? minimum : 0, 0), hi0 = max(maximum.isFinite ? maximum : 0, 0)
        guard !histogram.isEmpty, method != .minmax else { return (lo0, hi0) }
        let stats = HistogramStatistics(histogram, low: Double(histogramLow), high: Double(histogramHigh))
        return stats.clippingRange(method, percentile: percentile) ?? (lo0, hi0)
    }
}

/// Prefix sums over a histogram so that clipping error at any edge costs O(1).
struct HistogramStatistics {
    let counts: [Double]
    let low: Double
    let width: Double
    /// Prefix sums of count, count·x, count·x² (x = bin centre); index i covers bins 0..<i.
    let c0: [Double], c1: [Double], c2: [Double]
    let total: Double

    init(_ counts: [Double], low: Double, high: Double) {
        self.counts = counts
        self.low = low
        width = (high - low) / Double(counts.count)
        var a = [0.0], b = [0.0], c = [0.0]
        for (i, n) in counts.enumerated() {
            let x = low + (Double(i) + 0.5) * width
            a.append(a.last! + n)
            b.append(b.last! + n * x)
            c.append(c.last! + n * x * x)
        }
        (c0, c1, c2) = (a, b, c)
        total = a.last!
    }

    func edge(_ i: Int) -> Double { low + Double(i) * width }

    /// The clipping range [lo, hi] (lo ≤ 0 ≤ hi) that `method` picks from this histogram; nil for
    /// `minmax`, whose range is the observed span rather than the histogram's bins.
    func clippingRange(_ method: CalibrationMethod, percentile: Double) -> (lo: Float, hi: Float)? {
        let (lo, hi): (Double, Double)
        switch method {
        case .minmax: return nil
        case .percentile:
            let tail = (100 - percentile) / 100
            (lo, hi) = (quantile(tail), quantile(1 - tail))
        case .mse: (lo, hi) = mseRange()
        case .entropy: (lo, hi) = entropyRange()
        }
        return (Float(min(lo, 0)), Float(max(hi, 0)))
    }

    /// Value below which a fraction q of the mass lies (interpolated inside the bin).
    func quantile(_ q: Double) -> Double {
        let target = q * total
        var i = 0
        while i < counts.count && c0[i + 1] < target { i += 1 }
        guard i < counts.count else { return edge(counts.count) }
        let inBin = counts[i] > 0 ? (target - c0[i]) / counts[i] : 0
        return edge(i) + min(max(inBin, 0), 1) * width
    }

    /// Expected squared error of quantising to 256 levels over [edge(l), edge(h)].
    func error(lowEdge l: Int, highEdge h: Int) -> Double {
        let lo = edge(l), hi = edge(h)
        // Mass below lo clipped to lo: Σ n (x − lo)², from prefix sums.
        let below = c2[l] - 2 * lo * c1[l] + lo * lo * c0[l]
        let n = counts.count
        let aboveC0 = c0[n] - c0[h], aboveC1 = c1[n] - c1[h], aboveC2 = c2[n] - c2[h]
        let above = aboveC2 - 2 * hi * aboveC1 + hi * hi * aboveC0
        let step = (hi - lo) / 255
        let inside = (c0[h] - c0[l]) * step * step / 12
        return below + above + inside
    }

    /// Exhaustive search over bin edges (subsampled) on both sides of zero.
    func mseRange() -> (Double, Double) {
        let n = counts.count
        let zero = min(max(Int((-low / width).rounded()), 0), n)
        let lows = candidates(from: 0, to: zero)
        let highs = candidates(from: zero, to: n)
        var best = (Double.infinity, 0, n)
        for l in lows {
            for h in highs where h > l {
                let e = error(lowEdge: l, highEdge: h)
                if e < best.0 { best = (e, l, h) }
            }
        }
        return (edge(best.1), edge(best.2))
    }

    /// Bin edges from a through b about (b − a)/count apart, both ends included.
    func candidates(from a: Int, to b: Int, count: Int = 384) -> [Int] {
        guard b > a else { return [a] }
        let step = Self.candidateStep(from: a, to: b, count: count)
        var out = Array(stride(from: a, through: b, by: step))
        if out.last != b { out.append(b) }
        return out
    }

    static func candidateStep(from a: Int, to b: Int, count: Int) -> Int { max(1, (b - a) / count) }

    /// TensorRT's entropy criterion for the asymmetric 8-bit grid the executor uses: the window
    /// [edge(l), edge(h)] (l ≤ zero ≤ h) whose quantisation to `levels` levels keeps the KL
    /// divergence from the clipped float histogram smallest. The whole window shares the levels,
    /// as it does at run time (searching each sign alone with 128 levels, TensorRT's symmetric
    /// form, misjudges one-sided tensors such as SiLU outputs; on the default model this search
    /// measured 61.96% top-1 against 60.02%). KL still favours narrow windows on peaked
    /// post-activation distributions, which is why `mse` is the default (README, "Measured
    /// results"). A coarse grid of window edges, then a finer one around the best.
    func entropyRange(levels: Int = 256) -> (Double, Double) {
        let n = counts.count
        let zero = min(max(Int((-low / width).rounded()), 0), n)
        guard total > 0 else { return (edge(0), edge(n)) }
        var best = (kl: Double.infinity, l: 0, h: n)
        func consider(_ l: Int, _ h: Int) {
            // At least `levels` bins, as in TensorRT: in a narrower window P and Q differ only by
            // the folded tails, and normalising both hides even a drastic clip (a one-bin window
            // has KL 0).
            guard l >= 0, h <= n, l <= zero, h >= zero, h - l >= min(levels, n) else { return }
            let kl = windowDivergence(l, h, levels: levels)
            if kl < best.kl { best = (kl, l, h) }
        }
        for l in candidates(from: 0, to: zero, count: 16) {
            for h in candidates(from: zero, to: n, count: 32) { consider(l, h) }
        }
        // Then edges a quarter of the coarse step apart, up to a coarse step either way.
        let (l0, h0) = (best.l, best.h)
        let fineLow = max(1, Self.candidateStep(from: 0, to: zero, count: 16) / 4)
        let fineHigh = max(1, Self.candidateStep(from: zero, to: n, count: 32) / 4)
        for dl in -4...4 {
            for dh in -4...4 { consider(l0 + dl * fineLow, h0 + dh * fineHigh) }
        }
        return (edge(best.l), edge(best.h))
    }

    /// KL(P‖Q) for the window of bins [l, h): P is the window with the mass outside folded into
    /// its edge bins; Q quantises the window's own counts to `levels` equal groups, each group's
    /// mass spread evenly over the bins where P is non-zero (TensorRT's construction).
    func windowDivergence(_ l: Int, _ h: Int, levels: Int) -> Double {
        let w = h - l
        var p = Array(counts[l..<h])
        p[0] += c0[l]
        p[w - 1] += total - c0[h]
        var q = [Double](repeating: 0, count: w)
        let groups = min(levels, w)
        for j in 0..<groups {
            let start = j * w / groups, end = (j + 1) * w / groups
            var sum = 0.0, nonzero = 0
            for i in start..<end {
                sum += counts[l + i]
                if p[i] > 0 { nonzero += 1 }
            }
            guard nonzero > 0 else { continue }
            for i in start..<end where p[i] > 0 { q[i] = sum / Double(nonzero) }
        }
        return Self.divergence(p, q)
    }

    static func divergence(_ p: [Double], _ q: [Double]) -> Double {
        let sp = p.reduce(0, +), sq = q.reduce(0, +)
        guard sp > 0, sq > 0 else { return .infinity }
        var kl = 0.0
        for i in 0..<p.count where p[i] > 0 {
            let pi = p[i] / sp
            let qi = q[i] / sq
            kl += qi > 0 ? pi * log(pi / qi) : pi * 30  // an empty Q bin under mass is heavily penalised
        }
        return kl
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
