import MVFormats

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Terminal output helpers: stderr, fixed-point number formatting without Foundation, and a
/// progress line shown only when stderr is a terminal.
enum Console {
    static func error(_ line: String) {
        writeStandardError(line + "\n")
    }

    static func info(_ line: String) { error(line) }

    static var isTerminal: Bool { isatty(2) != 0 }
}

/// Writes to file descriptor 2 directly (the C `stderr` global is not concurrency-safe in Swift 6).
func writeStandardError(_ text: String) {
    var s = text
    s.withUTF8 { buf in
        var done = 0
        while done < buf.count {
            let n = write(2, buf.baseAddress! + done, buf.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}

/// `x` with exactly `decimals` digits after the point; beyond 2⁵³ units of the last digit (where
/// the digits would not be exact, and the integer conversion would overflow for the largest
/// values) Swift's shortest description, e.g. `1e+308`.
func fixed(_ x: Double, _ decimals: Int) -> String {
    guard x.isFinite else { return "\(x)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (abs(x) * scale).rounded()
    guard r < 0x1p53 else { return "\(x)" }
    let whole = Int(r / scale)
    let frac = Int(r - Double(whole) * scale)
    let sign = x < 0 && r != 0 ? "-" : ""
    guard decimals > 0 else { return sign + String(whole) }
    let f = String(frac)
    return sign + String(whole) + "." + String(repeating: "0", count: decimals - f.count) + f
}

func fixed(_ x: Float, _ decimals: Int) -> String { fixed(Double(x), decimals) }

/// Right-aligns or left-aligns cells into a plain-text table.
func table(_ rows: [[String]], rightAlign: Set<Int> = []) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        r.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return rightAlign.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// A progress line on stderr ("label 12/100"), redrawn in place on a terminal, silent otherwise.
struct Progress {
    let label: String
    let total: Int
    let enabled: Bool
    private var lastShown = -1

    init(_ label: String, total: Int, enabled: Bool = Console.isTerminal) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    mutating func update(_ done: Int) {
        guard enabled else { return }
        let percent = total > 0 ? done * 100 / total : 100
        guard percent != lastShown || done == total else { return }
        lastShown = percent
        var s = "\r\(label) \(done)/\(total) (\(percent)%)"
        if done >= total { s += "\n" }
        writeStandardError(s)
    }
}

func writeJSON(_ value: JSON, to path: String) throws {
    if path == "-" {
        print(value.serialized(indent: 2))
    } else {
        try FileSystem.writeAtomically(path, bytes: Array((value.serialized(indent: 2) + "\n").utf8))
    }
}
