#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats
import MVImage
import TestSupport
import XCTest

/// The encoded images of ../shared/images (not their .safetensors references), sorted.
func sharedImageFiles(for what: String) -> [String]? {
    guard let dir = SharedFixtures.path("images", for: what) else { return nil }
    let names = (try? FileSystem.list(dir)) ?? []
    return names.filter { !$0.hasSuffix(".safetensors") && !FileSystem.isDirectory(FileSystem.join(dir, $0)) }
        .map { FileSystem.join(dir, $0) }
}

/// Pillow's decode of an image, from the X.rgb.safetensors beside it.
func pillowReference(_ imagePath: String) throws -> (pixels: [UInt8], height: Int, width: Int) {
    let st = try SafeTensorsFile(path: imagePath + ".rgb.safetensors")
    let info = try st.info("rgb")
    XCTAssertEqual(info.shape.count, 3)
    return (try st.uint8s("rgb"), info.shape[0], info.shape[1])
}

/// Mean and maximum absolute difference per channel.
func channelDifferences(_ a: [UInt8], _ b: [UInt8]) -> (mean: [Double], max: [Int]) {
    var sums = [0.0, 0.0, 0.0]
    var maxes = [0, 0, 0]
    for i in 0..<min(a.count, b.count) {
        let d = abs(Int(a[i]) - Int(b[i]))
        sums[i % 3] += Double(d)
        maxes[i % 3] = max(maxes[i % 3], d)
    }
    let n = Double(max(a.count / 3, 1))
    return (sums.map { $0 / n }, maxes)
}

func formatted(_ v: Double, _ digits: Int = 3) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (v * scale).rounded() / scale
    return "\(r)"
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try FileSystem.writeAtomically(path, bytes: bytes)
}
