/// Entry point of the `mvquant` command line.
public enum CLI {
    public static func main(_ arguments: [String]) -> Int32 {
        print("mvquant: not yet implemented")
        return 0
    }
}
