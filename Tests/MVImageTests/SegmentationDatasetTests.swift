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

final class SegmentationDatasetTests: XCTestCase {
    let ppm = Array("P6 1 1 255\n".utf8) + [1, 2, 3]
    let mask = makePNG(width: 1, height: 1, bitDepth: 8, colorType: 3, samples: [[[1]]], palette: [0, 0, 0])

    /// root/images/{b.jpg, a.ppm, c.png, noextension, notes.txt, .hidden.ppm, sub/},
    /// root/masks/{a,b,c,noextension,extra}.png, root/classes.txt.
    func makeSet() throws -> TemporaryDirectory {
        let temporary = TemporaryDirectory()
        let root = temporary.path
        mkdir(temporary.file("images"), 0o755)
        mkdir(temporary.file("masks"), 0o755)
        mkdir(temporary.file("images/sub"), 0o755)
        for name in ["b.jpg", "a.ppm", "c.png", "noextension", ".hidden.ppm"] {
            try writeFile(FileSystem.join(root, "images/" + name), ppm)
        }
        try writeFile(temporary.file("images/notes.txt"), Array("not an image".utf8))
        for name in ["a", "b", "c", "noextension", "extra", "notes"] {
            try writeFile(FileSystem.join(root, "masks/\(name).png"), mask)
        }
        try writeFile(temporary.file("classes.txt"), Array("background\r\n  cat \r\ndog\n\n".utf8))
        return temporary
    }

    func testListing() throws {
        let set = try makeSet()
        defer { set.remove() }
        let root = set.path
        XCTAssertTrue(SegmentationDataset.isSegmentationFolder(root))
        let ds = try SegmentationDataset.load(path: root)
        XCTAssertEqual(ds.root, root)
        XCTAssertEqual(ds.classNames, ["background", "cat", "dog"])
        XCTAssertEqual(ds.items.map { FileSystem.baseName($0.image) }, ["a.ppm", "b.jpg", "c.png", "noextension"])
        XCTAssertEqual(ds.items.map { String($0.mask.dropFirst(root.count + 1)) },
                       ["masks/a.png", "masks/b.png", "masks/c.png", "masks/noextension.png"])
        XCTAssertEqual(ds.items.map { String($0.image.dropFirst(root.count + 1)) },
                       ["images/a.ppm", "images/b.jpg", "images/c.png", "images/noextension"])
        XCTAssertEqual(ds.skipped.map { String($0.dropFirst(root.count + 1)) }, ["images/notes.txt", "images/sub"])
        XCTAssertEqual(ds.count, 4)
        XCTAssertEqual(try SegmentationDataset.load(path: root), ds)
        for item in ds.items {
            XCTAssertEqual(try ImageDecoder.decode(path: item.image).pixels, [1, 2, 3])
            XCTAssertEqual(try ImageDecoder.decodeLabels(path: item.mask).labels, [1])
        }
        // Without classes.txt there are no names.
        unlink(set.file("classes.txt"))
        XCTAssertEqual(try SegmentationDataset.load(path: root).classNames, [])
        XCTAssertEqual(SegmentationDataset.maskName(forImage: "x.y.jpg"), "x.y.png")
        XCTAssertEqual(SegmentationDataset.maskName(forImage: "x"), "x.png")
    }

    func testIsSegmentationFolder() throws {
        let set = try makeSet()
        defer { set.remove() }
        XCTAssertFalse(SegmentationDataset.isSegmentationFolder(set.file("images")))
        XCTAssertFalse(SegmentationDataset.isSegmentationFolder(set.file("classes.txt")))
        XCTAssertFalse(SegmentationDataset.isSegmentationFolder(set.file("missing")))
        // An ImageFolder tree is not one.
        let tree = TemporaryDirectory()
        defer { tree.remove() }
        mkdir(tree.file("cat"), 0o755)
        mkdir(tree.file("images"), 0o755)
        XCTAssertFalse(SegmentationDataset.isSegmentationFolder(tree.path))
    }

    /// Each refusal is one line naming the folder or file.
    func testErrors() throws {
        let set = try makeSet()
        defer { set.remove() }
        let root = set.path
        func message(_ path: String) -> String? {
            do {
                _ = try SegmentationDataset.load(path: path)
                return nil
            } catch {
                XCTAssertTrue(error is InputError, "\(error)")
                XCTAssertFalse("\(error)".contains("\n"), "\(error)")
                return "\(error)"
            }
        }
        XCTAssertEqual(message(set.file("missing")), "\(set.file("missing")): no such file or directory")
        XCTAssertEqual(message(set.file("classes.txt")),
                       "\(set.file("classes.txt")): is a file, expected a segmentation folder (images/ and masks/)")

        // A mask missing: the first image without one is named, and how many others.
        unlink(set.file("masks/b.png"))
        unlink(set.file("masks/noextension.png"))
        XCTAssertEqual(message(root), "\(root): image images/b.jpg has no mask masks/b.png (and 1 other image(s) without a mask)")
        unlink(set.file("images/noextension"))
        XCTAssertEqual(message(root), "\(root): image images/b.jpg has no mask masks/b.png")
        unlink(set.file("images/b.jpg"))

        // classes.txt with a hole.
        try writeFile(set.file("classes.txt"), Array("background\n\ncat\n".utf8))
        XCTAssertEqual(message(root), "\(set.file("classes.txt")): line 2 is empty (one class name per line, label 0 first)")
        unlink(set.file("classes.txt"))
        XCTAssertEqual(try SegmentationDataset.load(path: root).count, 2)

        // No images.
        for name in ["a.ppm", "c.png"] { unlink(set.file("images/" + name)) }
        XCTAssertEqual(message(root), "\(set.file("images")): no images")

        // No masks/ folder, no images/ folder.
        let bare = TemporaryDirectory()
        defer { bare.remove() }
        mkdir(bare.file("images"), 0o755)
        XCTAssertEqual(message(bare.path),
                       "\(bare.path): no masks/ folder (a segmentation folder holds images/NAME.jpg and masks/NAME.png)")
        rmdir(bare.file("images"))
        mkdir(bare.file("masks"), 0o755)
        XCTAssertTrue(SegmentationDataset.isSegmentationFolder(bare.path))
        XCTAssertEqual(message(bare.path),
                       "\(bare.path): no images/ folder (a segmentation folder holds images/NAME.jpg and masks/NAME.png)")
    }

    /// The CIFAR-10 mosaic sets of ../shared.
    func testSharedSets() throws {
        for (name, count) in [("val", 1000), ("calib", 300)] {
            guard let root = SharedFixtures.path("data/cifar10_seg/" + name, for: "CIFAR-10 segmentation \(name) set") else { continue }
            XCTAssertTrue(SegmentationDataset.isSegmentationFolder(root))
            let ds = try SegmentationDataset.load(path: root)
            XCTAssertEqual(ds.count, count)
            XCTAssertEqual(ds.skipped, [])
            XCTAssertEqual(ds.classNames.count, 11)
            XCTAssertEqual(ds.classNames.first, "background")
            XCTAssertEqual(ds.classNames.last, "truck")
            XCTAssertEqual(FileSystem.baseName(ds.items[0].image), "00000.jpg")
            XCTAssertEqual(FileSystem.baseName(ds.items[0].mask), "00000.png")
        }
    }
}
