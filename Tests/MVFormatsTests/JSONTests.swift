import MVFormats
import XCTest

final class JSONTests: XCTestCase {
    func testParsesNestedValues() throws {
        let v = try JSON.parse(#"{"a": [1, 2.5, -3e2], "b": {"c": "x\"\u00e9\n"}, "d": true, "e": null}"#)
        XCTAssertEqual(v["a"]?.array?.compactMap(\.double), [1, 2.5, -300])
        XCTAssertEqual(v["b"]?["c"]?.string, "x\"é\n")
        XCTAssertEqual(v["d"]?.bool, true)
        XCTAssertEqual(v["e"], .null)
    }

    func testRoundTripsThroughSerialization() throws {
        let v: JSON = ["name": "mvq", "n": 3, "xs": [1.5, 2], "nested": ["ok": true]]
        XCTAssertEqual(try JSON.parse(v.serialized()), v)
        XCTAssertEqual(try JSON.parse(v.serialized(indent: 2)), v)
    }

    func testRejectsMalformedText() {
        for bad in ["{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "1 2", "{\"a\":1,}", "-", "[\"\u{01}\"]"] {
            XCTAssertThrowsError(try JSON.parse(bad), bad)
        }
    }
}
