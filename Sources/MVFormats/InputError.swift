/// The one error type for bad input: a corrupt, truncated or inconsistent file, an unknown
/// architecture, a shape that does not fit. Its message is a single line meant for the user;
/// the command line maps it to exit code 2.
public struct InputError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }

    /// The same error with the file it concerns in front, so the user sees which file was bad.
    public func inFile(_ path: String) -> InputError {
        message.hasPrefix(path) ? self : InputError("\(path): \(message)")
    }
}
