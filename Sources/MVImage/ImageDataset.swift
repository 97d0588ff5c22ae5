#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MVFormats

/// A list of image files, optionally labelled: either an ImageFolder tree (one subfolder per
/// class, as torchvision's ImageFolder reads it) or a plain list of files.
///
/// Everything is sorted by name (byte order), so the same tree always gives the same items in
/// the same order. Files that are not images are skipped (and listed in `skipped`): hidden files,
/// and files whose extension is not an image extension and whose first bytes are not an image
/// signature.
public struct ImageDataset: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public let path: String
        /// The class index: the position of the class folder among the sorted folders, or,
        /// after `matchLabels`, the model's label id. Nil for an unlabelled list.
        public let label: Int?

        public init(path: String, label: Int?) {
            self.path = path
            self.label = label
        }
    }

    /// Class folder names, sorted; empty for an unlabelled list.
    public let classNames: [String]
    /// The label of each class in `classNames`: 0, 1, 2… from the folder order, or the model's
    /// ids after `matchLabels`.
    public let classLabels: [Int]
    public let items: [Item]
    /// Files passed over because they are not images, in the order they were met.
    public let skipped: [String]

    public init(classNames: [String], classLabels: [Int], items: [Item], skipped: [String] = []) {
        self.classNames = classNames
        self.classLabels = classLabels
        self.items = items
        self.skipped = skipped
    }

    public var count: Int { items.count }
    public var isLabelled: Bool { !classNames.isEmpty }

    /// Extensions taken as images without looking inside the file.
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "jpe", "jfif", "png", "ppm", "pgm", "pnm"]

    /// A file, a directory of image files, or an ImageFolder tree (a directory with
    /// subdirectories: each is a class; files directly in the root are then ignored, as in
    /// torchvision).
    public static func load(path: String) throws -> ImageDataset {
        guard FileSystem.exists(path) else { throw InputError("\(path): no such file or directory") }
        guard FileSystem.isDirectory(path) else { return try files([path]) }
        let names = try FileSystem.list(path).filter { !$0.hasPrefix(".") }
        if names.contains(where: { FileSystem.isDirectory(FileSystem.join(path, $0)) }) {
            return try imageFolder(path)
        }
        return try files(names.map { FileSystem.join(path, $0) })
    }

    /// An ImageFolder tree: classes are the subfolders sorted by name, with labels 0, 1, 2…;
    /// each class's files are gathered from its folder and any folders below it.
    public static func imageFolder(_ root: String) throws -> ImageDataset {
        let classNames = try FileSystem.list(root).filter {
            !$0.hasPrefix(".") && FileSystem.isDirectory(FileSystem.join(root, $0))
        }
        guard !classNames.isEmpty else { throw InputError("\(root): no class folders (expected one subfolder per class)") }
        var items: [Item] = []
        var skipped: [String] = []
        for (label, name) in classNames.enumerated() {
            var files: [String] = []
            try collectFiles(FileSystem.join(root, name), into: &files, depth: 0)
            for f in files {
                if isImageFile(f) { items.append(Item(path: f, label: label)) } else { skipped.append(f) }
            }
        }
        return ImageDataset(classNames: classNames, classLabels: Array(classNames.indices), items: items, skipped: skipped)
    }

    /// An unlabelled list of files, in the given order, without the ones that are not images.
    public static func files(_ paths: [String]) throws -> ImageDataset {
        var items: [Item] = []
        var skipped: [String] = []
        for p in paths {
            guard !FileSystem.isDirectory(p) else { throw InputError("\(p): is a directory, expected an image file") }
            if isImageFile(p) { items.append(Item(path: p, label: nil)) } else { skipped.append(p) }
        }
        return ImageDataset(classNames: [], classLabels: [], items: items, skipped: skipped)
    }

    /// Files below `dir`, directory by directory in path order and sorted within each, like
    /// torchvision's sorted os.walk. Symbolic-link loops are cut off by a depth limit.
    private static func collectFiles(_ dir: String, into files: inout [String], depth: Int) throws {
        guard depth < 32 else { throw InputError("\(dir): folders nested too deeply") }
        let names = try FileSystem.list(dir).filter { !$0.hasPrefix(".") }
        var subdirs: [String] = []
        for n in names {
            let p = FileSystem.join(dir, n)
            if FileSystem.isDirectory(p) { subdirs.append(p) } else { files.append(p) }
        }
        for d in subdirs { try collectFiles(d, into: &files, depth: depth + 1) }
    }

    /// Whether a file is taken as an image: by extension, or else by its first bytes.
    public static func isImageFile(_ path: String) -> Bool {
        let name = FileSystem.baseName(path)
        if name.hasPrefix(".") { return false }
        if let dot = name.lastIndex(of: "."), imageExtensions.contains(name[name.index(after: dot)...].lowercased()) {
            return true
        }
        return ImageFormat.sniff(firstBytes(path, 8)) != nil
    }

    private static func firstBytes(_ path: String, _ n: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: n)
        let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, n) }
        return got > 0 ? Array(buffer.prefix(got)) : []
    }

    /// The same items labelled with the model's label ids: each class folder's name must equal
    /// one of the model's label names (`id2label` from its config).
    public func matchLabels(id2label: [Int: String]) throws -> ImageDataset {
        guard isLabelled else { throw InputError("cannot match labels: the dataset has no class folders") }
        var idForName: [String: Int] = [:]
        var duplicated: Set<String> = []
        for (id, name) in id2label {
            if let other = idForName[name], other != id { duplicated.insert(name) }
            idForName[name] = min(id, idForName[name] ?? id)
        }
        var labels: [Int] = []
        var missing: [String] = []
        for name in classNames {
            if duplicated.contains(name) {
                throw InputError("cannot match labels: the model has more than one label named '\(name)'")
            }
            if let id = idForName[name] { labels.append(id) } else { missing.append(name) }
        }
        guard missing.isEmpty else {
            let shown = missing.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            throw InputError("cannot match labels: \(missing.count) class folder(s) are not model label names (\(shown)\(missing.count > 5 ? ", …" : ""))")
        }
        let relabelled = items.map { item in
            Item(path: item.path, label: item.label.flatMap { classLabels.firstIndex(of: $0) }.map { labels[$0] })
        }
        return ImageDataset(classNames: classNames, classLabels: labels, items: relabelled, skipped: skipped)
    }

    /// At most `count` items spread evenly: the same number from each class (the remainder to
    /// the first classes; a class with too few files gives all it has and the rest is shared
    /// out), picked at even spacing through each class, interleaved class by class so that
    /// any prefix is balanced too. Unlabelled lists are sampled at even spacing. Deterministic.
    public func evenSample(count: Int) -> ImageDataset {
        guard count < items.count else { return self }
        guard count > 0 else { return ImageDataset(classNames: classNames, classLabels: classLabels, items: [], skipped: skipped) }
        var groups: [[Item]] = []
        if isLabelled {
            var byLabel: [Int: Int] = [:]
            for item in items {
                let key = item.label ?? -1
                if let g = byLabel[key] {
                    groups[g].append(item)
                } else {
                    byLabel[key] = groups.count
                    groups.append([item])
                }
            }
        } else {
            groups = [items]
        }
        // Water-filling: share the remaining count equally among groups that still have files.
        var quota = [Int](repeating: 0, count: groups.count)
        var remaining = count
        while remaining > 0 {
            let open = groups.indices.filter { quota[$0] < groups[$0].count }
            if open.isEmpty { break }
            let share = max(remaining / open.count, 1)
            for g in open where remaining > 0 {
                let add = min(share, groups[g].count - quota[g], remaining)
                quota[g] += add
                remaining -= add
            }
        }
        let picks: [[Item]] = groups.indices.map { g in
            let n = groups[g].count
            let k = quota[g]
            return (0..<k).map { i in groups[g][(2 * i + 1) * n / (2 * k)] }
        }
        var sampled: [Item] = []
        let rounds = picks.map(\.count).max() ?? 0
        for r in 0..<rounds {
            for p in picks where r < p.count { sampled.append(p[r]) }
        }
        return ImageDataset(classNames: classNames, classLabels: classLabels, items: sampled, skipped: skipped)
    }
}
