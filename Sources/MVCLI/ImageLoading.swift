import MVFormats
import MVImage
import MVKernels

/// How a command decodes image files, the same in every command: damaged data (truncated,
/// corrupt, bad checksum) is an error naming the file unless `--recover-damaged`, which decodes
/// past the damage and says so on stderr; with `--skip-damaged` (eval, calibrate) a file the
/// decoder refuses is left out and listed instead of stopping the run.
///
/// Shared by the threads of a dataset loop: what it records is behind a lock.
final class ImageLoading: @unchecked Sendable {
    static let recoverOption = OptionSpec(
        name: "--recover-damaged", value: nil,
        help: "decode damaged images as far as possible (libjpeg-style resynchronisation, truncated data padded, bad checksums and missing end markers ignored), reporting each on stderr")
    static let skipOption = OptionSpec(
        name: "--skip-damaged", value: nil,
        help: "leave out image files that fail to decode instead of stopping; the report and the JSON's \"skipped\" list them with the reason")

    let options: DecodeOptions
    let skipDamaged: Bool
    private let lock = ThreadLock()
    private var skippedFiles: [(file: String, reason: String)] = []
    private var recoveredFiles: [DamagedImageError] = []
    private var seen: Set<String> = []

    init(_ args: ParsedArguments) {
        options = DecodeOptions(recoverDamaged: args.has(Self.recoverOption.name))
        skipDamaged = args.has(Self.skipOption.name)
    }

    /// The files left out so far, in the order they were met.
    var skipped: [(file: String, reason: String)] { lock.withLock { skippedFiles } }
    var recovered: [DamagedImageError] { lock.withLock { recoveredFiles } }

    /// Decodes `path` under the policy and preprocesses it. A file the decoder refuses throws,
    /// or with `--skip-damaged` gives nil and is recorded.
    func pixelValues(_ pre: Preprocessor, path: String) throws -> (values: [Float], height: Int, width: Int)? {
        guard let image = try decode(path) else { return nil }
        do {
            return try pre.pixelValues(for: image)
        } catch let e as InputError {
            throw e.inFile(path)
        }
    }

    /// `pixelValues` for commands that cannot leave a file out.
    func requiredPixelValues(_ pre: Preprocessor, path: String) throws -> (values: [Float], height: Int, width: Int) {
        guard let x = try pixelValues(pre, path: path) else { throw InputError("\(path): could not be decoded") }
        return x
    }

    /// The decoded image, or nil when it is refused and skipping. Recovered damage is reported
    /// once per file.
    func decode(_ path: String) throws -> RGBImage? {
        let image: RGBImage
        do {
            image = try ImageDecoder.decode(path: path, options: options)
        } catch let e as DamagedImageError where skipDamaged {
            note(skip: path, reason: e.summary)
            return nil
        } catch let e as InputError where skipDamaged {
            let prefix = path + ": "
            note(skip: path, reason: e.message.hasPrefix(prefix) ? String(e.message.dropFirst(prefix.count)) : e.message)
            return nil
        }
        if let damage = image.damage {
            let first = lock.withLock { seen.insert("recovered " + path).inserted }
            if first {
                lock.withLock { recoveredFiles.append(damage) }
                Console.info("recovered \(damage.description) (decoded with --recover-damaged)")
            }
        }
        return image
    }

    /// A segmentation mask's labels under the same policy: nil when refused and skipping.
    func decodeLabels(_ path: String) throws -> LabelMap? {
        do {
            return try ImageDecoder.decodeLabels(path: path, options: options)
        } catch let e as DamagedImageError where skipDamaged {
            note(skip: path, reason: e.summary)
            return nil
        }
    }

    private func note(skip path: String, reason: String) {
        let first = lock.withLock { seen.insert("skipped " + path).inserted }
        guard first else { return }
        lock.withLock { skippedFiles.append((path, reason)) }
        Console.info("skipped \(path): \(reason)")
    }

    /// The dataset without the files the decoder refuses (each decoded once now), or the first
    /// such file's error when not skipping: so a long run (calibrate) stops before it writes
    /// anything rather than on a damaged file after.
    func screen(_ dataset: ImageDataset, threads: Int) throws -> ImageDataset {
        var keep = [Bool](repeating: true, count: dataset.count)
        var progress = Progress("checking images", total: dataset.count)
        try keep.withUnsafeMutableBufferPointer { keep in
            try ThreadPool(threads: threads).parallelForThrowing(dataset.count, progress: { progress.update($0) }) { i, _ in
                keep[i] = try decode(dataset.items[i].path) != nil
            }
        }
        progress.update(dataset.count)
        guard keep.contains(false) else { return dataset }
        return ImageDataset(classNames: dataset.classNames, classLabels: dataset.classLabels,
                            items: zip(dataset.items, keep).filter { $0.1 }.map(\.0), skipped: dataset.skipped)
    }

    /// `skipped` (always, so a reader need not guess) and `recovered` (when recovering) for a
    /// command's JSON report.
    var json: [(String, JSON)] {
        var members: [(String, JSON)] = [("skipped", .array(skipped.map {
            .object([("file", .string($0.file)), ("reason", .string($0.reason))])
        }))]
        if options.recoverDamaged {
            members.append(("recovered", .array(recovered.map {
                .object([("file", .string($0.file)), ("damage", .string($0.damage.rawValue)),
                         ("offset", $0.offset.map { .number(Double($0)) } ?? .null), ("detail", .string($0.detail))])
            })))
        }
        return members
    }

    /// One line for the text report when files were skipped or recovered, else nil.
    var summary: String? {
        let s = skipped
        let r = recovered
        var parts: [String] = []
        if !s.isEmpty {
            let names = s.prefix(5).map(\.file).joined(separator: ", ") + (s.count > 5 ? ", …" : "")
            parts.append("skipped \(s.count) damaged or undecodable image file(s): \(names)")
        }
        if !r.isEmpty { parts.append("recovered \(r.count) damaged image file(s)") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
