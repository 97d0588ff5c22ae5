#if canImport(Glibc)
import Glibc
#endif
import MVFormats
import MVImage
import TestSupport
import XCTest

/// Decode throughput on the JPEG fixtures. Prints megapixels per second; timing is never
/// asserted. Meaningful in a release build:
///   swift test -c release --filter DecodeSpeedTests   (MVIMAGE_SPEED_REPEATS sets N, default 3)
final class DecodeSpeedTests: XCTestCase {
    func testJPEGDecodeSpeed() throws {
        guard let files = sharedImageFiles(for: "JPEG decode speed") else { return }
        let jpegs = files.filter { $0.hasSuffix(".jpg") }
        let repeats = getenv("MVIMAGE_SPEED_REPEATS").flatMap { Int(String(cString: $0)) } ?? 3
        // Read the files first so the figure is decoding, not file I/O.
        let encoded = try jpegs.map { try FileSystem.read($0) }
        var pixels = 0
        var perFile = [Double](repeating: 0, count: jpegs.count)
        let start = monotonicSeconds()
        let startCPU = cpuSeconds()
        for _ in 0..<repeats {
            for (k, (bytes, path)) in zip(encoded, jpegs).enumerated() {
                let t = monotonicSeconds()
                let image = try ImageDecoder.decode(bytes: bytes, name: path)
                perFile[k] += monotonicSeconds() - t
                pixels += image.pixelCount
            }
        }
        let seconds = monotonicSeconds() - start
        let cpu = cpuSeconds() - startCPU
        for (k, path) in jpegs.enumerated() {
            let image = try ImageDecoder.decode(bytes: encoded[k], name: path)
            let mps = Double(image.pixelCount * repeats) / 1e6 / perFile[k]
            print("  \(FileSystem.baseName(path)): \(formatted(mps, 1)) MP/s")
        }
        let megapixels = Double(pixels) / 1e6
        // CPU time is the steadier figure on a shared machine.
        print("JPEG decode speed: \(jpegs.count) files x \(repeats) = \(formatted(megapixels, 2)) MP in \(formatted(seconds, 3)) s wall = \(formatted(megapixels / seconds, 1)) MP/s; \(formatted(cpu, 3)) s CPU = \(formatted(megapixels / cpu, 1)) MP/s")
    }

    /// Decode throughput over a whole dataset (MVIMAGE_SPEED_DIR, e.g. the CIFAR-10 images),
    /// where per-image overhead matters more than per-pixel speed.
    func testDatasetDecodeSpeed() throws {
        guard let env = getenv("MVIMAGE_SPEED_DIR") else {
            print("SKIP dataset decode speed: MVIMAGE_SPEED_DIR is not set")
            return
        }
        let dataset = try ImageDataset.load(path: String(cString: env))
        let encoded = try dataset.items.map { try FileSystem.read($0.path) }
        var pixels = 0
        let start = monotonicSeconds()
        let startCPU = cpuSeconds()
        for (bytes, item) in zip(encoded, dataset.items) {
            pixels += try ImageDecoder.decode(bytes: bytes, name: item.path).pixelCount
        }
        let seconds = monotonicSeconds() - start
        let cpu = cpuSeconds() - startCPU
        print("dataset decode speed: \(encoded.count) images in \(formatted(seconds, 3)) s wall, \(formatted(cpu, 3)) s CPU = \(formatted(Double(encoded.count) / cpu, 0)) images/s CPU, \(formatted(Double(pixels) / 1e6 / cpu, 1)) MP/s CPU")
    }
}

/// CPU time of this thread.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
