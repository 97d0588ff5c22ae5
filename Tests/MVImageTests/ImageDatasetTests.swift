#if canImport(Glibc)
import Glibc
#endif
import MVFormats
import MVImage
import TestSupport
import XCTest

final class ImageDatasetTests: XCTestCase {
    let ppm = Array("P6 1 1 255\n".utf8) + [1, 2, 3]

    /// root/{cat,dog,bird}/… with images, a nested folder, and files that are not images.
    func makeTree() throws -> TemporaryDirectory {
        let temporary = TemporaryDirectory()
        let root = temporary.path
        for cls in ["dog", "cat", "bird"] {
            let dir = FileSystem.join(root, cls)
            mkdir(dir, 0o755)
        }
        try writeFile(FileSystem.join(root, "cat/b.ppm"), ppm)
        try writeFile(FileSystem.join(root, "cat/a.ppm"), ppm)
        try writeFile(FileSystem.join(root, "cat/notes.txt"), Array("hello".utf8))
        try writeFile(FileSystem.join(root, "cat/.hidden.ppm"), ppm)
        try writeFile(FileSystem.join(root, "cat/noextension"), ppm)  // an image by its signature
        mkdir(FileSystem.join(root, "cat/more"), 0o755)
        try writeFile(FileSystem.join(root, "cat/more/c.PPM"), ppm)
        for i in 0..<7 { try writeFile(FileSystem.join(root, "dog/d\(i).ppm"), ppm) }
        try writeFile(FileSystem.join(root, "bird/x.ppm"), ppm)
        try writeFile(FileSystem.join(root, "README.md"), Array("ignored at the root".utf8))
        return temporary
    }

    func testImageFolder() throws {
        let tree = try makeTree()
        defer { tree.remove() }
        let root = tree.path
        let ds = try ImageDataset.load(path: root)
        XCTAssertEqual(ds.classNames, ["bird", "cat", "dog"])
        XCTAssertEqual(ds.classLabels, [0, 1, 2])
        let names = ds.items.map { String($0.path.dropFirst(root.count + 1)) }
        XCTAssertEqual(names, ["bird/x.ppm", "cat/a.ppm", "cat/b.ppm", "cat/noextension", "cat/more/c.PPM"]
            + (0..<7).map { "dog/d\($0).ppm" })
        XCTAssertEqual(ds.items.map(\.label), [0, 1, 1, 1, 1] + [Int?](repeating: 2, count: 7))
        XCTAssertEqual(ds.skipped.map { String($0.dropFirst(root.count + 1)) }, ["cat/notes.txt"])
        // The same tree gives the same dataset.
        XCTAssertEqual(try ImageDataset.load(path: root), ds)
        // Every item decodes.
        for item in ds.items { XCTAssertEqual(try ImageDecoder.decode(path: item.path).pixels, [1, 2, 3]) }
    }

    func testMatchLabels() throws {
        let tree = try makeTree()
        defer { tree.remove() }
        let root = tree.path
        let ds = try ImageDataset.imageFolder(root)
        let model = [0: "airplane", 7: "cat", 3: "bird", 5: "dog"]
        let matched = try ds.matchLabels(id2label: model)
        XCTAssertEqual(matched.classLabels, [3, 7, 5])
        XCTAssertEqual(matched.items.map(\.label), [3, 7, 7, 7, 7] + [Int?](repeating: 5, count: 7))
        // Matching again is a no-op.
        XCTAssertEqual(try matched.matchLabels(id2label: model), matched)
        XCTAssertThrowsError(try ds.matchLabels(id2label: [0: "cat", 1: "dog"])) { error in
            XCTAssertTrue("\(error)".contains("'bird'"), "\(error)")
        }
        XCTAssertThrowsError(try ds.matchLabels(id2label: [0: "cat", 1: "cat", 2: "dog", 3: "bird"]))
    }

    func testEvenSample() throws {
        let tree = try makeTree()
        defer { tree.remove() }
        let root = tree.path
        let ds = try ImageDataset.imageFolder(root)  // bird 1, cat 4, dog 7
        let six = ds.evenSample(count: 6)
        XCTAssertEqual(six.count, 6)
        // bird gives its only file; cat and dog share the rest (the odd one to the first
        // class); classes interleave.
        XCTAssertEqual(six.items.map(\.label), [0, 1, 2, 1, 2, 1])
        XCTAssertEqual(six, ds.evenSample(count: 6))
        let dogs = six.items.filter { $0.label == 2 }.map { FileSystem.baseName($0.path) }
        XCTAssertEqual(dogs, ["d1.ppm", "d5.ppm"])  // evenly spaced through 7
        XCTAssertEqual(ds.evenSample(count: 100), ds)
        XCTAssertEqual(ds.evenSample(count: 0).count, 0)
        XCTAssertEqual(ds.evenSample(count: 3).items.map(\.label), [0, 1, 2])
    }

    func testPlainListsAndSingleFiles() throws {
        let tree = try makeTree()
        defer { tree.remove() }
        let root = tree.path
        let flat = try ImageDataset.load(path: FileSystem.join(root, "dog"))
        XCTAssertFalse(flat.isLabelled)
        XCTAssertEqual(flat.count, 7)
        XCTAssertEqual(flat.items.map(\.label), [Int?](repeating: nil, count: 7))
        XCTAssertEqual(flat.evenSample(count: 2).items.map { FileSystem.baseName($0.path) }, ["d1.ppm", "d5.ppm"])
        let list = try ImageDataset.files([FileSystem.join(root, "cat/notes.txt"), FileSystem.join(root, "bird/x.ppm")])
        XCTAssertEqual(list.count, 1)
        XCTAssertEqual(list.skipped.count, 1)
        XCTAssertEqual(try ImageDataset.load(path: FileSystem.join(root, "bird/x.ppm")).count, 1)
        XCTAssertThrowsError(try ImageDataset.load(path: FileSystem.join(root, "missing")))
        XCTAssertThrowsError(try flat.matchLabels(id2label: [0: "dog"]))
    }

    /// The CIFAR-10 calibration tree of ../shared with the trained model's labels.
    func testSharedCalibrationSet() throws {
        guard let calib = SharedFixtures.path("data/cifar10/calib", for: "CIFAR-10 calibration set"),
            let config = SharedFixtures.path("models/mobilevit_xxs_cifar10_64/config.json", for: "CIFAR-10 model config")
        else { return }
        let json = try JSON.parse(try FileSystem.read(config))
        var id2label: [Int: String] = [:]
        for (k, v) in json["id2label"]?.object ?? [] { if let id = Int(k), let name = v.string { id2label[id] = name } }
        let ds = try ImageDataset.load(path: calib).matchLabels(id2label: id2label)
        XCTAssertEqual(ds.count, 1000)
        XCTAssertEqual(ds.classLabels, Array(0..<10))
        let sample = ds.evenSample(count: 50)
        for label in 0..<10 { XCTAssertEqual(sample.items.filter { $0.label == label }.count, 5) }
        let image = try ImageDecoder.decode(path: sample.items[0].path)
        XCTAssertEqual(image.width, 32)
    }
}
