import MVFloat
import MVFormats
import MVKernels
import MVModel

/// Runs the float executor over calibration images and collects, for every activation the int8
/// model quantises, a `RangeObserver`: first min/max, then a histogram over that span.
public struct Calibrator {
    public let checkpoint: Checkpoint
    public let height: Int
    public let width: Int
    public let threads: Int
    /// Tensors whose second moment E[x xᵀ] is collected (the inputs of GEMMs, for
    /// error-compensating weight rounding).
    public let secondMomentTensors: Set<String>
    /// Tensors quantised per channel, whose second pass also keeps a histogram per channel (for a
    /// clipping range per channel).
    public let perChannelTensors: Set<String>

    public init(checkpoint: Checkpoint, height: Int, width: Int, threads: Int, secondMomentTensors: Set<String> = [],
                perChannelTensors: Set<String> = []) {
        self.checkpoint = checkpoint
        self.secondMomentTensors = secondMomentTensors
        self.perChannelTensors = perChannelTensors
        self.height = height
        self.width = width
        self.threads = max(1, threads)
    }

    /// - Parameters:
    ///   - count: number of calibration images.
    ///   - image: pixel values (NCHW float32 [1, C, H, W]) of image `i`; called from several threads.
    ///   - progress: called with the number of image passes done (out of 2·count).
    public func collect(count: Int, image: @escaping @Sendable (Int) throws -> [Float],
                        progress: (Int) -> Void = { _ in }) throws -> [String: RangeObserver] {
        let pool = ThreadPool(threads: threads)
        let executors = (0..<threads).map { _ in FloatExecutor(checkpoint: checkpoint) }
        var perThread = [[String: RangeObserver]](repeating: [:], count: threads)
        // Decoded images are kept between the passes when they fit in 256 MB, else decoded again.
        let cacheable = count * 3 * height * width * 4 <= 256 << 20
        var cache = [[Float]?](repeating: nil, count: cacheable ? count : 0)
        for pass in 0..<2 {
            if pass == 1 {
                // Merge the ranges so every thread builds its histogram over the same span.
                let merged = merge(perThread)
                if let bad = merged.filter({ $0.value.nonFiniteCount > 0 }).min(by: { $0.value.sequence < $1.value.sequence })?.key {
                    throw InputError("the float model's activation '\(bad)' is NaN or infinite on the calibration images "
                                     + "(\(merged[bad]!.nonFiniteCount) values): its weights overflow float32")
                }
                for (name, o) in merged {
                    o.beginHistogram()
                    if perChannelTensors.contains(name) { o.beginChannelHistograms() }
                }
                perThread = (0..<threads).map { _ in
                    var d: [String: RangeObserver] = [:]
                    for (name, o) in merged {
                        let copy = RangeObserver()
                        copy.adoptSpan(of: o)
                        d[name] = copy
                    }
                    return d
                }
            }
            // Buffer pointers, not pointers to the arrays: an element assigned through
            // `pointer.pointee[i]` checks the array's uniqueness while other threads hold it, and
            // can copy it under their feet.
            try perThread.withUnsafeMutableBufferPointer { observerBuffer in
                let observersByWorker = observerBuffer  // captured by the (escaping) observer closure
                try cache.withUnsafeMutableBufferPointer { cacheSlots in
                    // Progress counts image passes: the second pass continues from `count`.
                    try pool.parallelForThrowing(count, progress: { progress(pass * count + $0) }) { i, worker in
                        let pixels: [Float]
                        if cacheable, let cached = cacheSlots[i] { pixels = cached } else {
                            pixels = try image(i)
                            if cacheable { cacheSlots[i] = pixels }
                        }
                        guard pixels.count == checkpoint.config.numChannels * height * width else {
                            throw InputError("calibration image \(i) has \(pixels.count) values, expected \(checkpoint.config.numChannels)×\(height)×\(width)")
                        }
                        _ = executors[worker].run(nchw: pixels, height: height, width: width) { name, shape, mutableValues in
                            let values = UnsafeBufferPointer(mutableValues)
                            let observers = observersByWorker[worker]
                            if pass == 0 {
                                let o = observers[name] ?? {
                                    let n = RangeObserver()
                                    n.sequence = observers.count  // one run reports every tensor, in order
                                    observersByWorker[worker][name] = n
                                    return n
                                }()
                                o.observeRange(values)
                                if shape.count == 3 { o.observeChannels(values, channels: shape[2]) }
                            } else if let o = observers[name] {
                                o.observeHistogram(values)
                                if shape.count == 3, perChannelTensors.contains(name) {
                                    o.observeChannelHistograms(values, channels: shape[2])
                                }
                                if secondMomentTensors.contains(name) {
                                    o.observeRowProducts(values, channels: shape[shape.count - 1])
                                }
                            }
                        }
                    }
                }
            }
        }
        let merged = merge(perThread)
        for o in merged.values where o.rowCount > 0 { o.symmetrizeRowProducts() }
        return merged
    }

    func merge(_ perThread: [[String: RangeObserver]]) -> [String: RangeObserver] {
        var merged: [String: RangeObserver] = [:]
        for d in perThread {
            for (name, o) in d {
                if let m = merged[name] { m.merge(o) } else {
                    let m = RangeObserver()
                    m.sequence = o.sequence
                    m.merge(o)
                    merged[name] = m
                }
            }
        }
        return merged
    }
}
