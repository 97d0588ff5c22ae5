// Microbenchmarks of the int8 kernels (no assertions; for logs and the lead's comparisons).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Throughput measurements of the int8 GEMM and depthwise kernels on synthetic data.
public enum Int8KernelBenchmark {
    /// Monotonic time in seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Runs `body` repeatedly for at least `minSeconds` (after one warm-up call) and returns the
    /// best time of one call.
    static func bestTime(minSeconds: Double, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        let start = now()
        var calls = 0
        repeat {
            let t0 = now()
            body()
            best = min(best, now() - t0)
            calls += 1
        } while now() - start < minSeconds || calls < 3
        return best
    }

    /// GMAC/s of `Int8GEMM.run` (int8 output, per-channel requantisation, strided rows) for an
    /// M x K by K x N product on one thread.
    public static func gemm(m: Int, k: Int, n: Int, isa: KernelISA = .best, minSeconds: Double = 0.2) -> Double {
        var seed: UInt32 = 12345
        func next() -> Int8 {
            seed = seed &* 1_103_515_245 &+ 12345
            return Int8(truncatingIfNeeded: seed >> 16)
        }
        let a = (0..<m * k).map { _ in next() }
        let w = (0..<n * k).map { _ in max(next(), -127) }
        let requant = RequantizationParameters(
            multipliers: (0..<n).map { Int32(1 << 30) + Int32($0 * 1000) },
            shifts: (0..<n).map { _ in 8 })
        let packed = PackedInt8Matrix(weights: w, n: n, k: k, bias: (0..<n).map { Int32($0) }, aZeroPoint: 3,
                                      requantization: requant, isa: isa)
        var out = [Int8](repeating: 0, count: m * n)
        let t = a.withUnsafeBufferPointer { ap in
            out.withUnsafeMutableBufferPointer { op in
                bestTime(minSeconds: minSeconds) {
                    Int8GEMM.run(a: ap.baseAddress!, aRows: .strided(k), m: m, k: k, b: packed,
                                 output: op.baseAddress!, outRows: .strided(n), outputZeroPoint: -5)
                }
            }
        }
        return Double(m * n * k) / t / 1e9
    }

    /// GMAC/s of `Int8GEMM.runInt32` (attention scores), strided rows, one thread.
    public static func gemmInt32(m: Int, k: Int, n: Int, isa: KernelISA = .best, minSeconds: Double = 0.2) -> Double {
        var seed: UInt32 = 999
        func next() -> Int8 {
            seed = seed &* 1_103_515_245 &+ 12345
            return Int8(truncatingIfNeeded: seed >> 16)
        }
        let a = (0..<m * k).map { _ in next() }
        let w = (0..<n * k).map { _ in next() }
        let packed = PackedInt8Matrix(weights: w, n: n, k: k, aZeroPoint: 3, bZeroPoint: -7, isa: isa)
        var out = [Int32](repeating: 0, count: m * n)
        let t = a.withUnsafeBufferPointer { ap in
            out.withUnsafeMutableBufferPointer { op in
                bestTime(minSeconds: minSeconds) {
                    Int8GEMM.runInt32(a: ap.baseAddress!, aRows: .strided(k), m: m, k: k, b: packed,
                                      output: op.baseAddress!, outRows: .strided(n))
                }
            }
        }
        return Double(m * n * k) / t / 1e9
    }

    /// Microseconds to repack an attention operand in place: K rows (`n` x `k`, row-major) when
    /// `columns` is false, V columns (column-major, as for P·V) when true.
    public static func repackMicroseconds(n: Int, k: Int, columns: Bool, isa: KernelISA = .best,
                                          minSeconds: Double = 0.1) -> Double {
        let src = (0..<n * k).map { Int8(truncatingIfNeeded: $0 &* 37) }
        let packed = PackedInt8Matrix(capacityN: n, capacityK: k, isa: isa)
        let requant = RequantizationParameters(multiplier: 1 << 30, shift: 7)
        let t = src.withUnsafeBufferPointer { sp in
            bestTime(minSeconds: minSeconds) {
                if columns {
                    packed.repack(columns: sp.baseAddress!, kStride: n, n: n, k: k, aZeroPoint: -128, bZeroPoint: 5,
                                  requantization: requant)
                } else {
                    packed.repack(rows: sp.baseAddress!, rowStride: k, n: n, k: k, aZeroPoint: 4, bZeroPoint: 5)
                }
            }
        }
        return t * 1e6
    }

    /// GMAC/s of `DepthwiseConv3x3Int8` on an H x W x C input at the given stride, one thread.
    public static func depthwise(height: Int, width: Int, channels: Int, stride: Int,
                                 isa: KernelISA = .best, minSeconds: Double = 0.2) -> Double {
        var seed: UInt32 = 777
        func next() -> Int8 {
            seed = seed &* 1_103_515_245 &+ 12345
            return Int8(truncatingIfNeeded: seed >> 16)
        }
        let input = (0..<height * width * channels).map { _ in next() }
        let w = (0..<channels * 9).map { _ in max(next(), -127) }
        let conv = DepthwiseConv3x3Int8(
            weights: w, bias: nil, channels: channels, inputZeroPoint: 2,
            requantization: RequantizationParameters(multiplier: 1 << 30, shift: 6), isa: isa)
        let (oh, ow) = DepthwiseConv3x3Int8.outputSize(inputHeight: height, inputWidth: width, stride: stride)
        var out = [Int8](repeating: 0, count: oh * ow * channels)
        let t = input.withUnsafeBufferPointer { ip in
            out.withUnsafeMutableBufferPointer { op in
                bestTime(minSeconds: minSeconds) {
                    conv.run(input: ip.baseAddress!, inputHeight: height, inputWidth: width, stride: stride,
                             output: op.baseAddress!, outputZeroPoint: 1, rows: 0..<oh)
                }
            }
        }
        return Double(oh * ow * channels * 9) / t / 1e9
    }

    /// GMAC/s of `Conv2DInt8` (im2col tiles of `recommendedTilePixels` + GEMM, or Winograd where it
    /// applies and `allowWinograd`), one thread, counting the direct convolution's multiply-adds.
    public static func conv2d(height: Int, width: Int, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int,
                              isa: KernelISA = .best, allowWinograd: Bool = true, minSeconds: Double = 0.2) -> Double {
        var seed: UInt32 = 4242
        func next() -> Int8 {
            seed = seed &* 1_103_515_245 &+ 12345
            return Int8(truncatingIfNeeded: seed >> 16)
        }
        let input = (0..<height * width * inChannels).map { _ in next() }
        let w = (0..<outChannels * inChannels * kernelSize * kernelSize).map { _ in max(next(), -127) }
        let conv = Conv2DInt8(weights: w, bias: nil, inChannels: inChannels, outChannels: outChannels,
                              kernelSize: kernelSize, stride: stride, inputZeroPoint: -4,
                              requantization: RequantizationParameters(multiplier: 1 << 30, shift: 9), isa: isa,
                              allowWinograd: allowWinograd)
        let (oh, ow) = conv.outputSize(inputHeight: height, inputWidth: width)
        let tile = conv.recommendedTilePixels
        var scratch = [Int8](repeating: 0, count: max(1, conv.scratchSize(tilePixels: tile)))
        var out = [Int8](repeating: 0, count: oh * ow * outChannels)
        let t = input.withUnsafeBufferPointer { ip in
            out.withUnsafeMutableBufferPointer { op in
                scratch.withUnsafeMutableBufferPointer { sp in
                    bestTime(minSeconds: minSeconds) {
                        conv.run(input: ip.baseAddress!, inputHeight: height, inputWidth: width, output: op.baseAddress!,
                                 outputZeroPoint: 3, rows: 0..<oh, scratch: sp.baseAddress!, tilePixels: tile)
                    }
                }
            }
        }
        return Double(oh * ow * outChannels * inChannels * kernelSize * kernelSize) / t / 1e9
    }

    /// A multi-line report of GEMM throughput on MobileViT-like shapes for every available ISA.
    public static func report(minSeconds: Double = 0.2, isas: [KernelISA] = KernelISA.available) -> String {
        let shapes = [(4096, 64, 128), (1024, 80, 160), (256, 256, 16), (256, 16, 256), (16384, 27, 16), (1024, 720, 80),
                      (16384, 16, 32), (16384, 32, 16), (4096, 48, 96), (4096, 96, 24), (4096, 48, 24), (64, 64, 20)]
        var lines: [String] = []
        for (m, k, n) in shapes {
            var line = "GEMM M=\(m) K=\(k) N=\(n):"
            for isa in isas {
                let g = gemm(m: m, k: k, n: n, isa: isa, minSeconds: minSeconds)
                line += " \(isa.rawValue) \(formatted(g)) GMAC/s"
            }
            lines.append(line)
        }
        for (m, k, n) in [(256, 16, 256), (256, 32, 256)] {
            var line = "GEMM int32 out M=\(m) K=\(k) N=\(n):"
            for isa in isas { line += " \(isa.rawValue) \(formatted(gemmInt32(m: m, k: k, n: n, isa: isa, minSeconds: minSeconds))) GMAC/s" }
            lines.append(line)
        }
        for (n, k, columns) in [(256, 16, false), (16, 256, true)] {
            var line = "repack \(columns ? "V columns" : "K rows") N=\(n) K=\(k):"
            for isa in isas { line += " \(isa.rawValue) \(formatted(repackMicroseconds(n: n, k: k, columns: columns, isa: isa, minSeconds: minSeconds))) us" }
            lines.append(line)
        }
        for (h, cin, cout, n, s) in [(256, 3, 16, 3, 2), (32, 96, 48, 3, 1), (32, 64, 64, 3, 1), (16, 160, 80, 3, 1)] {
            var line = "conv \(n)x\(n) \(h)x\(h)x\(cin)->\(cout) stride \(s):"
            for isa in isas {
                let g = conv2d(height: h, width: h, inChannels: cin, outChannels: cout, kernelSize: n, stride: s, isa: isa,
                               minSeconds: minSeconds)
                line += " \(isa.rawValue) \(formatted(g)) GMAC/s"
                if WinogradConv3x3Weights.applies(kernelSize: n, stride: s, dilation: 1, inChannels: cin, isa: isa) {
                    let d = conv2d(height: h, width: h, inChannels: cin, outChannels: cout, kernelSize: n, stride: s, isa: isa,
                                   allowWinograd: false, minSeconds: minSeconds)
                    line += " (avx2 direct \(formatted(d)))"
                }
            }
            lines.append(line)
        }
        for (h, c, s) in [(64, 64, 1), (32, 128, 2), (16, 256, 1)] {
            var line = "depthwise 3x3 \(h)x\(h)x\(c) stride \(s):"
            for isa in isas {
                let g = depthwise(height: h, width: h, channels: c, stride: s, isa: isa, minSeconds: minSeconds)
                line += " \(isa.rawValue) \(formatted(g)) GMAC/s"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    static func formatted(_ x: Double) -> String {
        let scaled = Int((x * 100).rounded())
        let frac = scaled % 100
        return "\(scaled / 100).\(frac < 10 ? "0" : "")\(frac)"
    }
}
