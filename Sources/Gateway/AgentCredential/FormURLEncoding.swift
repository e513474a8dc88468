import Foundation

/// `application/x-www-form-urlencoded` values (also how RFC 6749 §2.3.1 wants Basic client
/// credentials encoded): everything but RFC 3986's unreserved characters percent-encoded.
enum FormURLEncoding {
    static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
}
