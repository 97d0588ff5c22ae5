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

/// `ImageDecoder.decodeLabels`: the stored samples of palette and 8-bit greyscale PNGs.
final class LabelMaskTests: XCTestCase {
    /// Palette indices at every bit depth, plain and interlaced, come out as stored: not looked
    /// up in the palette, not scaled, including indices past the palette's end.
    func testPaletteMasksAtEveryBitDepth() throws {
        var random = TestRandom(state: 11)
        for depth in [1, 2, 4, 8] {
            for interlaced in [false, true] {
                for (width, height) in [(1, 1), (3, 2), (13, 11), (9, 17), (128, 3)] {
                    let samples = (0..<height).map { _ in (0..<width).map { _ in [random.below(1 << depth)] } }
                    // Three palette entries only: indices past them must still come back as they are.
                    let palette: [UInt8] = [10, 20, 30, 40, 50, 60, 70, 80, 90]
                    let png = makePNG(width: width, height: height, bitDepth: depth, colorType: 3, samples: samples,
                                      palette: palette, interlaced: interlaced)
                    let name = "p\(depth)-\(interlaced ? "adam7" : "plain")-\(width)x\(height).png"
                    let map = try ImageDecoder.decodeLabels(bytes: png, name: name)
                    XCTAssertEqual(map.width, width, name)
                    XCTAssertEqual(map.height, height, name)
                    XCTAssertEqual(map.labels, samples.flatMap { $0.map { UInt8($0[0]) } }, name)
                    XCTAssertNil(map.damage, name)
                }
            }
        }
        // 255 (ignore) at 8 bits, and label(x:y:) addressing.
        let samples = [[[0], [5], [255]], [[10], [255], [1]]]
        let png = makePNG(width: 3, height: 2, bitDepth: 8, colorType: 3, samples: samples, palette: [0, 0, 0])
        let map = try ImageDecoder.decodeLabels(bytes: png, name: "ignore.png")
        XCTAssertEqual(map.labels, [0, 5, 255, 10, 255, 1])
        XCTAssertEqual(map.label(x: 2, y: 0), 255)
        XCTAssertEqual(map.label(x: 0, y: 1), 10)
        XCTAssertEqual(map.pixelCount, 6)
    }

    /// An 8-bit greyscale mask (Pillow mode "L") gives its grey values, plain and interlaced.
    func testGreyMasks() throws {
        var random = TestRandom(state: 12)
        for interlaced in [false, true] {
            let (width, height) = (17, 9)
            let samples = (0..<height).map { _ in (0..<width).map { _ in [random.below(4) == 0 ? 255 : random.below(21)] } }
            let png = makePNG(width: width, height: height, bitDepth: 8, colorType: 0, samples: samples, interlaced: interlaced)
            let map = try ImageDecoder.decodeLabels(bytes: png, name: "grey.png")
            XCTAssertEqual(map.labels, samples.flatMap { $0.map { UInt8($0[0]) } })
        }
    }

    /// Masks with colours, alpha or other grey depths, and other formats, are refused in one
    /// line that names the file and what it is.
    func testRefusesImagesThatAreNotLabelMasks() throws {
        let cases: [(colorType: Int, depth: Int, expected: String)] = [
            (2, 8, "RGB (colour type 2)"), (6, 8, "RGBA (colour type 6)"), (2, 16, "RGB (colour type 2)"),
            (4, 8, "greyscale with alpha (colour type 4)"), (0, 16, "16-bit greyscale"), (0, 4, "4-bit greyscale"),
            (0, 1, "1-bit greyscale"),
        ]
        for c in cases {
            let channels = [0: 1, 2: 3, 4: 2, 6: 4][c.colorType]!
            let samples = [[[Int]](repeating: [Int](repeating: 1, count: channels), count: 2)]
            let png = makePNG(width: 2, height: 1, bitDepth: c.depth, colorType: c.colorType, samples: samples)
            XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: png, name: "masks/m.png")) { error in
                let text = "\(error)"
                XCTAssertTrue(error is InputError, text)
                XCTAssertTrue(text.hasPrefix("masks/m.png: "), text)
                XCTAssertTrue(text.contains(c.expected), text)
                XCTAssertTrue(text.contains("palette"), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
            // The RGB decode of the same file is fine.
            XCTAssertNoThrow(try ImageDecoder.decode(bytes: png, name: "m.png"))
        }
        let ppm = Array("P5 2 1 255\n".utf8) + [1, 2]
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: ppm, name: "m.pgm")) { error in
            XCTAssertTrue("\(error)".hasPrefix("m.pgm: a PPM/PGM image is not a label mask"), "\(error)")
        }
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: Array("hello".utf8), name: "m.txt")) { error in
            XCTAssertTrue("\(error)".hasPrefix("m.txt: not a JPEG, PNG or PPM/PGM image"), "\(error)")
        }
        // A palette image without its palette is as corrupt as for the RGB decode.
        let noPLTE = pngSignature + pngIHDR(width: 1, height: 1, bitDepth: 8, colorType: 3)
            + pngChunk("IDAT", zlibStored([0, 3])) + pngChunk("IEND", [])
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: noPLTE, name: "noplte.png")) { error in
            XCTAssertTrue("\(error)".contains("without a PLTE"), "\(error)")
        }
    }

    /// The damaged-image policy and the pixel budget apply as to the RGB decode.
    func testDamagePolicyAndBudget() throws {
        let samples = [[[1], [2], [3]], [[4], [255], [0]]]
        let good = makePNG(width: 3, height: 2, bitDepth: 8, colorType: 3, samples: samples, palette: [0, 0, 0])
        let iend = pngChunk("IEND", [])
        let noIEND = Array(good.dropLast(iend.count))
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: noIEND, name: "noiend.png")) { error in
            let e = error as? DamagedImageError
            XCTAssertEqual(e?.damage, .truncated, "\(error)")
            XCTAssertEqual(e?.file, "noiend.png")
        }
        let recovered = try ImageDecoder.decodeLabels(bytes: noIEND, name: "noiend.png",
                                                      options: DecodeOptions(recoverDamaged: true))
        XCTAssertEqual(recovered.labels, [1, 2, 3, 4, 255, 0])
        XCTAssertEqual(recovered.damage?.damage, .truncated)
        XCTAssertEqual(recovered.damage?.file, "noiend.png")

        // A bad CRC: refused, or decoded and reported.
        var badCRC = good
        badCRC[badCRC.count - 1] ^= 0x55  // IEND's CRC
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: badCRC, name: "crc.png")) { error in
            XCTAssertEqual((error as? DamagedImageError)?.damage, .badChecksum, "\(error)")
        }
        let lenient = try ImageDecoder.decodeLabels(bytes: badCRC, name: "crc.png", options: DecodeOptions(recoverDamaged: true))
        XCTAssertEqual(lenient.labels, [1, 2, 3, 4, 255, 0])
        XCTAssertEqual(lenient.damage?.damage, .badChecksum)

        // Image data cut short is refused in both modes.
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: Array(good.prefix(good.count - 30)), name: "cut.png",
                                                           options: DecodeOptions(recoverDamaged: true)))

        XCTAssertThrowsError(try ImageDecoder.decodeLabels(bytes: good, name: "big.png", options: DecodeOptions(maxPixels: 5))) { error in
            XCTAssertTrue("\(error)".hasPrefix("big.png: PNG image is 3x2, more than the limit of 5 pixels"), "\(error)")
        }
    }

    /// The file entry point names the file in its errors.
    func testFromFile() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let samples = [[[7], [0]]]
        try writeFile(dir.file("m.png"), makePNG(width: 2, height: 1, bitDepth: 4, colorType: 3, samples: samples, palette: [1, 2, 3]))
        XCTAssertEqual(try ImageDecoder.decodeLabels(path: dir.file("m.png")).labels, [7, 0])
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(path: dir.file("missing.png"))) { error in
            XCTAssertTrue("\(error)".hasPrefix(dir.file("missing.png")), "\(error)")
        }
        try writeFile(dir.file("rgb.png"), makePNG(width: 1, height: 1, bitDepth: 8, colorType: 2, samples: [[[1, 2, 3]]]))
        XCTAssertThrowsError(try ImageDecoder.decodeLabels(path: dir.file("rgb.png"))) { error in
            XCTAssertTrue("\(error)".hasPrefix(dir.file("rgb.png") + ": the PNG is RGB (colour type 2), not a label mask"), "\(error)")
        }
    }

    /// The first 20 masks of ../shared/data/cifar10_seg/val: labels 0…10 or 255, each the size
    /// of its image (128×128).
    func testSharedMasks() throws {
        guard let root = SharedFixtures.path("data/cifar10_seg/val", for: "CIFAR-10 segmentation masks") else { return }
        let names = try FileSystem.list(FileSystem.join(root, "masks")).filter { $0.hasSuffix(".png") }.prefix(20)
        XCTAssertEqual(names.count, 20)
        var histogram = [Int](repeating: 0, count: 256)
        for name in names {
            let path = FileSystem.join(root, "masks/" + name)
            let mask = try ImageDecoder.decodeLabels(path: path)
            let image = try ImageDecoder.decode(path: FileSystem.join(root, "images/" + name.dropLast(4) + ".jpg"))
            XCTAssertEqual(mask.width, image.width, path)
            XCTAssertEqual(mask.height, image.height, path)
            XCTAssertEqual(mask.width, 128, path)
            XCTAssertEqual(mask.height, 128, path)
            XCTAssertNil(mask.damage)
            for v in mask.labels { histogram[Int(v)] += 1 }
        }
        let outOfRange = (11..<255).filter { histogram[$0] > 0 }
        XCTAssertEqual(outOfRange, [], "labels outside 0…10 and 255")
        // A mosaic has background and at least one photo's class.
        XCTAssertGreaterThan(histogram[0], 0)
        XCTAssertGreaterThan(histogram[1...10].reduce(0, +), 0)
    }

    /// decodeLabels against Pillow (`np.asarray(Image.open(mask))`) on generated masks of every
    /// kind and a few shared ones, when a python3 with Pillow is at hand (MVQUANT_PYTHON, else
    /// python3 on the PATH).
    func testAgainstPillow() throws {
        let python = getenv("MVQUANT_PYTHON").map { String(cString: $0) } ?? "python3"
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        guard let status = runProcess([python, "-c", "import PIL"], stderrPath: dir.file("probe.err")) else {
            print("SKIP decodeLabels against Pillow: cannot run \(python)")
            return
        }
        guard status == 0 else {
            print("SKIP decodeLabels against Pillow: \(python) cannot import PIL (Pillow is not installed; MVQUANT_PYTHON may name a python that has it)")
            return
        }
        var masks: [String] = []
        var random = TestRandom(state: 13)
        for (depth, colorType) in [(1, 3), (2, 3), (4, 3), (8, 3), (8, 0)] {
            for interlaced in [false, true] {
                let (width, height) = (21, 10)
                let samples = (0..<height).map { _ in (0..<width).map { _ in [random.below(1 << depth)] } }
                let path = dir.file("ct\(colorType)-d\(depth)-\(interlaced).png")
                try writeFile(path, makePNG(width: width, height: height, bitDepth: depth, colorType: colorType, samples: samples,
                                            palette: colorType == 3 ? [1, 2, 3, 4, 5, 6] : nil, interlaced: interlaced))
                masks.append(path)
            }
        }
        if let root = SharedFixtures.path("data/cifar10_seg/val/masks", for: "shared masks against Pillow") {
            masks += try FileSystem.list(root).prefix(5).map { FileSystem.join(root, $0) }
        }
        // Each mask as width, height (4-byte little-endian) and its samples.
        let script = """
            import sys
            from PIL import Image
            import numpy as np
            with open(sys.argv[1], "wb") as out:
                for path in sys.argv[2:]:
                    im = Image.open(path)
                    assert im.mode in ("P", "L"), (path, im.mode)
                    a = np.asarray(im)
                    assert a.dtype == np.uint8 and a.ndim == 2, (path, a.dtype, a.shape)
                    out.write(a.shape[1].to_bytes(4, "little") + a.shape[0].to_bytes(4, "little") + a.tobytes())
            """
        let output = dir.file("pillow.bin")
        let exit = runProcess([python, "-c", script, output] + masks, stderrPath: dir.file("pillow.err"))
        guard exit == 0 else {
            let err = (try? FileSystem.readText(dir.file("pillow.err"))) ?? ""
            if err.contains("No module named 'numpy'") {
                print("SKIP decodeLabels against Pillow: \(python) has Pillow but not numpy")
                return
            }
            XCTFail("the Pillow script failed (\(String(describing: exit))): \(err)")
            return
        }
        let bytes = try FileSystem.read(output)
        var offset = 0
        func u32() -> Int {
            defer { offset += 4 }
            return (0..<4).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
        }
        for path in masks {
            let width = u32(), height = u32()
            let expected = Array(bytes[offset..<(offset + width * height)])
            offset += width * height
            let map = try ImageDecoder.decodeLabels(path: path)
            XCTAssertEqual(map.width, width, path)
            XCTAssertEqual(map.height, height, path)
            XCTAssertEqual(map.labels, expected, path)
        }
        XCTAssertEqual(offset, bytes.count)
        print("decodeLabels matches Pillow on \(masks.count) masks")
    }
}

/// Runs a program (looked up on the PATH) with its standard output discarded and its standard
/// error written to `stderrPath`; its exit status, or nil when it could not be started or did
/// not exit normally.
func runProcess(_ arguments: [String], stderrPath: String) -> Int32? {
    #if canImport(Darwin)
    var actions: posix_spawn_file_actions_t? = nil
    #else
    var actions = posix_spawn_file_actions_t()
    #endif
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    guard posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { return nil }
    }
    // WIFEXITED and WEXITSTATUS, which Swift does not import.
    guard status & 0x7F == 0 else { return nil }
    return (status >> 8) & 0xFF
}
