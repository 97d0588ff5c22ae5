import MVFormats

/// A semantic-segmentation set: a folder holding `images/` and `masks/`, where the mask of
/// `images/NAME.EXT` is `masks/NAME.png` (a label mask, see `ImageDecoder.decodeLabels`), and
/// optionally `classes.txt` with one class name per line (line N names label N).
///
/// Items are sorted by image file name (byte order), so the same folder always gives the same
/// items in the same order. As in `ImageDataset`, hidden files are ignored, and files of
/// `images/` with neither an image extension nor an image signature are skipped and listed in
/// `skipped` (subfolders too); masks without an image are not used.
public struct SegmentationDataset: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        /// The image's path.
        public let image: String
        /// Its mask's path: `masks/` + the image's name without its extension + `.png`.
        public let mask: String

        public init(image: String, mask: String) {
            self.image = image
            self.mask = mask
        }
    }

    /// The folder holding `images/` and `masks/`.
    public let root: String
    /// The names of `classes.txt`, label 0 first; empty when the folder has no `classes.txt`.
    public let classNames: [String]
    public let items: [Item]
    /// Entries of `images/` passed over because they are not image files, in name order.
    public let skipped: [String]

    public init(root: String, classNames: [String], items: [Item], skipped: [String] = []) {
        self.root = root
        self.classNames = classNames
        self.items = items
        self.skipped = skipped
    }

    public var count: Int { items.count }

    /// Whether `path` is a folder to read as a segmentation set rather than an ImageFolder tree:
    /// a directory with a `masks/` subfolder (the rule of the ONNX Runtime anchor script). A
    /// folder with `masks/` but no `images/` is therefore a segmentation set that `load`
    /// refuses with a clear error, not an ImageFolder with a class called "masks".
    public static func isSegmentationFolder(_ path: String) -> Bool {
        FileSystem.isDirectory(path) && FileSystem.isDirectory(FileSystem.join(path, "masks"))
    }

    /// Lists the set at `root`. Throws a one-line `InputError` when `root`, `images/` or
    /// `masks/` is missing, when `images/` holds no images, when an image has no mask (naming
    /// the first such image and how many there are) and when `classes.txt` has an empty line
    /// before its last name.
    public static func load(path root: String) throws -> SegmentationDataset {
        guard FileSystem.exists(root) else { throw InputError("\(root): no such file or directory") }
        guard FileSystem.isDirectory(root) else {
            throw InputError("\(root): is a file, expected a segmentation folder (images/ and masks/)")
        }
        let imageDir = FileSystem.join(root, "images")
        let maskDir = FileSystem.join(root, "masks")
        guard FileSystem.isDirectory(imageDir) else {
            throw InputError("\(root): no images/ folder (a segmentation folder holds images/NAME.jpg and masks/NAME.png)")
        }
        guard FileSystem.isDirectory(maskDir) else {
            throw InputError("\(root): no masks/ folder (a segmentation folder holds images/NAME.jpg and masks/NAME.png)")
        }
        var items: [Item] = []
        var skipped: [String] = []
        var missing: [String] = []
        for name in try FileSystem.list(imageDir) where !name.hasPrefix(".") {
            let image = FileSystem.join(imageDir, name)
            guard !FileSystem.isDirectory(image), ImageDataset.isImageFile(image) else {
                skipped.append(image)
                continue
            }
            let mask = FileSystem.join(maskDir, maskName(forImage: name))
            if FileSystem.exists(mask) && !FileSystem.isDirectory(mask) {
                items.append(Item(image: image, mask: mask))
            } else {
                missing.append(name)
            }
        }
        if let first = missing.first {
            let others = missing.count > 1 ? " (and \(missing.count - 1) other image(s) without a mask)" : ""
            throw InputError("\(root): image images/\(first) has no mask masks/\(maskName(forImage: first))\(others)")
        }
        guard !items.isEmpty else { throw InputError("\(imageDir): no images") }
        let classesFile = FileSystem.join(root, "classes.txt")
        let classNames = FileSystem.exists(classesFile) ? try readClassNames(classesFile) : []
        return SegmentationDataset(root: root, classNames: classNames, items: items, skipped: skipped)
    }

    /// The mask file name of an image file name: the name up to its last dot, then `.png`.
    public static func maskName(forImage name: String) -> String {
        let stem = name.lastIndex(of: ".").map { name[..<$0] } ?? name[...]
        return stem + ".png"
    }

    /// One name per line, label 0 first. Surrounding white space and Windows line ends are dropped;
    /// empty lines at the end are ignored, an empty line before the last name is an error (it
    /// would shift every later label).
    static func readClassNames(_ path: String) throws -> [String] {
        var lines = try FileSystem.readText(path).split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingSpaces }
        while lines.last?.isEmpty == true { lines.removeLast() }
        if let empty = lines.firstIndex(of: "") {
            throw InputError("\(path): line \(empty + 1) is empty (one class name per line, label 0 first)")
        }
        return lines
    }
}

extension Substring {
    /// Without leading and trailing white space.
    fileprivate var trimmingSpaces: String {
        guard let start = firstIndex(where: { !$0.isWhitespace }), let end = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[start...end])
    }
}
