import MVFloat
import MVFormats
import MVImage
import MVInt8
import MVKernels
import MVModel
import MVQuant
import TestSupport
import XCTest

/// Calibrate the embedded default model on real images, compile, write and reload the .mvq, and
/// run it in int8: close to float, and bit-identical across thread counts and kernel ISAs.
final class EndToEndInt8Tests: XCTestCase {
    static let setup: (checkpoint: Checkpoint, model: QuantizedModel, images: [[Float]])? = {
        do {
            let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
            let preprocessor = try Preprocessor(config: checkpoint.preprocessor!)
            var paths: [String] = []
            let root = FileSystem.join(SharedFixtures.packageRoot, "Calibration/val")
            for c in try FileSystem.list(root) {
                for f in try FileSystem.list(FileSystem.join(root, c)).prefix(4) { paths.append(FileSystem.join(FileSystem.join(root, c), f)) }
            }
            let images = try paths.map { try preprocessor.pixelValues(path: $0).values }
            var options = QuantizationOptions()
            options.method = .minmax
            options.perChannelActivations = false  // per-tensor throughout, as this test has always compiled
            options.threads = 2
            let compiler = try quantize(checkpoint, height: 64, width: 64, imageCount: 24, options: options) {
                images[$0 % images.count]
            }.compiler
            // The loaded model maps the file, and a mapping outlives the file's name, so the
            // directory goes as soon as the model is loaded (a static has no tearDown to do it).
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            try compiler.model.write(to: dir.file("m.mvq"))
            return (checkpoint, try QuantizedModel(path: dir.file("m.mvq")), images)
        } catch {
            XCTFail("setup failed: \(error)")
            return nil
        }
    }()

    /// Every input the compiler rounds GEMM weights against is a tensor the float executor reports,
    /// with a symmetric second moment of the right width.
    func testEveryGemmInputHasASecondMoment() throws {
        let checkpoint = try Checkpoint.load(directory: SharedFixtures.defaultModel)
        let names = checkpoint.graph.network.gemmInputTensors
        let calibrator = Calibrator(checkpoint: checkpoint, height: 64, width: 64, threads: 1, secondMomentTensors: names)
        let observers = try calibrator.collect(count: 2) { i in (0..<(3 * 64 * 64)).map { Float(($0 * 7 + i * 13) % 256) / 255 } }
        for name in names {
            let m = try XCTUnwrap(observers[name]?.secondMoment, name)
            let n = Int(Double(m.count).squareRoot())
            XCTAssertEqual(n * n, m.count, name)
            for i in 0..<n { for j in 0..<i { XCTAssertEqual(m[i * n + j], m[j * n + i], name) } }
        }
        XCTAssertGreaterThan(names.count, 50)
    }

    func testInt8AgreesWithFloat() throws {
        guard let s = Self.setup else { return }
        let float = FloatExecutor(checkpoint: s.checkpoint)
        let int8 = try Int8Executor(model: s.model, threads: 1)
        var agree = 0
        var cosine = 0.0
        for image in s.images {
            let f = float.run(nchw: image, height: 64, width: 64)
            let q = image.withUnsafeBufferPointer { int8.run(nchw: $0, height: 64, width: 64) }
            if argmax(f) == argmax(q) { agree += 1 }
            let dot = zip(f, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let nf = f.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot(), nq = q.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
            cosine += dot / max(nf * nq, 1e-12)
        }
        cosine /= Double(s.images.count)
        print("int8 vs float on \(s.images.count) images: top-1 agreement \(agree), mean logit cosine \(cosine)")
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(s.images.count), 0.85)
        XCTAssertGreaterThan(cosine, 0.95)
    }

    func testBitIdenticalAcrossThreadsAndISAs() throws {
        guard let s = Self.setup else { return }
        let reference = try Int8Executor(model: s.model, threads: 1, isa: .reference)
        var executors = [try Int8Executor(model: s.model, threads: 2, isa: .reference)]
        for isa in KernelISA.available where isa != .reference {
            executors.append(try Int8Executor(model: s.model, threads: 1, isa: isa))
            executors.append(try Int8Executor(model: s.model, threads: 2, isa: isa))
        }
        for image in s.images.prefix(6) {
            let expected = image.withUnsafeBufferPointer { reference.runAccumulators(nchw: $0, height: 64, width: 64) }
            for e in executors {
                let got = image.withUnsafeBufferPointer { e.runAccumulators(nchw: $0, height: 64, width: 64) }
                XCTAssertEqual(got, expected, "\(e.isa) with \(e.threads) threads")
            }
        }
    }

    func testRunningTwiceGivesTheSameResultAndOtherSizesWork() throws {
        guard let s = Self.setup else { return }
        let e = try Int8Executor(model: s.model, threads: 2)
        let a = s.images[0].withUnsafeBufferPointer { e.runAccumulators(nchw: $0, height: 64, width: 64) }
        // A size whose last feature map is not divisible by the patch size (resize path).
        let big = [Float](repeating: 0.5, count: 3 * 96 * 96)
        _ = big.withUnsafeBufferPointer { e.runAccumulators(nchw: $0, height: 96, width: 96) }
        let b = s.images[0].withUnsafeBufferPointer { e.runAccumulators(nchw: $0, height: 64, width: 64) }
        XCTAssertEqual(a, b)
    }

    /// Input quantisation, the one float step before the logits, against its definition
    /// q = clamp(round_half_even(x · Float(1/s)) + z, −128, 127) with NaN giving −128: special
    /// values, halves, and values just inside and outside the clamp, in the vector body and the
    /// scalar tail (a 5×7 image: 35 pixels per channel), on one thread and on three (whose pixel
    /// ranges end inside the planes, so their scalar tails fall mid-plane).
    func testInputQuantisation() throws {
        guard let s = Self.setup else { return }
        for threads in [1, 3] {
            let e = try Int8Executor(model: s.model, threads: threads)
            for (h, w) in [(64, 64), (5, 7), (131, 67)] {
                let n = 3 * h * w
                let params = try s.model.activation("input")
                let inv = Float(1 / params.scale), z = params.zeroPoint
                let lo = Float(-128 - z) / inv, hi = Float(127 - z) / inv
                var special: [Float] = [.nan, .infinity, -.infinity, 1e30, -1e30, 0, -0.0, lo, hi,
                                        lo.nextDown, hi.nextUp, lo - 1 / inv, hi + 1 / inv]
                for k in -300...300 { special.append((Float(k) + 0.5) / inv) }  // halves, both sides of the range
                var x = [Float](repeating: 0, count: n)
                var state: UInt64 = 77
                for i in 0..<n {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    x[i] = i < special.count ? special[i] : Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 21)  // ±4
                }
                // The scalar tail of each plane (pixels beyond the last multiple of 8) gets specials too.
                let tail = h * w % 8
                for ch in 0..<3 {
                    for t in 0..<tail { x[(ch + 1) * h * w - tail + t] = special[(ch * tail + t) % 13] }
                }
                var got: [Int8] = []
                _ = x.withUnsafeBufferPointer {
                    e.runAccumulators(nchw: $0, height: h, width: w) { name, shape, data, stride, _, _ in
                        guard name == "input" else { return }
                        XCTAssertEqual(shape, [h, w, 3])
                        XCTAssertEqual(stride, 3)
                        got = Array(UnsafeBufferPointer(start: data, count: n))
                    }
                }
                XCTAssertEqual(got.count, n)
                for i in 0..<min(n, got.count) {
                    let ch = i / (h * w), pixel = i % (h * w)
                    let v = x[i] * inv
                    let want: Int8 = v.isNaN ? -128 : Int8(max(-128, min(127, Double(v.rounded(.toNearestOrEven)) + Double(z))))
                    if got[pixel * 3 + ch] != want {
                        XCTFail("\(threads) threads, \(h)×\(w) element \(i): x = \(x[i]) gives \(got[pixel * 3 + ch]), expected \(want)")
                        break
                    }
                }
            }
        }
    }

    func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] }! }
}
