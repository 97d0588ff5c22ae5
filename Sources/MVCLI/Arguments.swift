import MVImage
/// A usage error: bad or missing command-line arguments (exit code 1).
struct UsageError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// One option a command accepts.
struct OptionSpec: Sendable {
    let name: String          // "--model"
    let value: String?        // placeholder when the option takes a value ("DIR"), nil for a flag
    let help: String
    var repeats = false
}

/// A command's parsed arguments: options by name (each possibly given several times) and
/// positional arguments in order.
struct ParsedArguments {
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    var positional: [String] = []

    func value(_ name: String) -> String? { values[name]?.last }
    func has(_ name: String) -> Bool { flags.contains(name) }

    /// Prints text of the human-readable report: on stdout, or on stderr when `--json -` puts the
    /// machine-readable results on stdout (which then holds the JSON document alone).
    func report(_ text: String) {
        if value("--json") == "-" { writeStandardError(text + "\n") } else { print(text) }
    }

    func required(_ name: String) throws -> String {
        guard let v = value(name) else { throw UsageError("missing required option \(name)") }
        return v
    }

    func int(_ name: String, default d: Int, range: ClosedRange<Int> = 1...Int.max) throws -> Int {
        guard let s = value(name) else { return d }
        guard let v = Int(s), range.contains(v) else {
            throw UsageError("\(name) expects an integer in \(range.lowerBound)…\(range.upperBound == Int.max ? "∞" : String(range.upperBound)), got '\(s)'")
        }
        return v
    }

    /// "HxW" or "N" (square).
    func size(_ name: String) throws -> (Int, Int)? {
        guard let s = value(name) else { return nil }
        // omittingEmptySubsequences: false, so "32x" and "x32" are errors rather than 32.
        let parts = s.lowercased().split(separator: "x", omittingEmptySubsequences: false).map(String.init)
        let dims = parts.compactMap { Int($0) }
        guard dims.count == parts.count, (1...2).contains(dims.count), dims.allSatisfy({ (1...Preprocessor.maxSide).contains($0) }) else {
            throw UsageError("\(name) expects HxW (e.g. 256x256) with sides in 1…\(Preprocessor.maxSide), got '\(s)'")
        }
        return (dims[0], dims.count == 2 ? dims[1] : dims[0])
    }
}

func parseArguments(_ args: [String], options: [OptionSpec]) throws -> ParsedArguments {
    var out = ParsedArguments()
    var i = 0
    var onlyPositional = false
    while i < args.count {
        let a = args[i]
        i += 1
        if onlyPositional || !a.hasPrefix("-") || a == "-" {
            out.positional.append(a)
            continue
        }
        if a == "--" { onlyPositional = true; continue }
        var name = a, inline: String?
        if let eq = a.firstIndex(of: "=") {
            name = String(a[..<eq])
            inline = String(a[a.index(after: eq)...])
        }
        guard let spec = options.first(where: { $0.name == name }) else {
            throw UsageError("unknown option \(name)")
        }
        if spec.value == nil {
            guard inline == nil else { throw UsageError("\(name) takes no value") }
            out.flags.insert(name)
        } else {
            let v: String
            if let inline { v = inline } else {
                guard i < args.count else { throw UsageError("\(name) needs a value (\(spec.value!))") }
                v = args[i]
                i += 1
            }
            if !spec.repeats, out.values[name] != nil { throw UsageError("\(name) given twice") }
            out.values[name, default: []].append(v)
        }
    }
    return out
}
