import Foundation

/// `application/x-www-form-urlencoded` values (also how RFC 6749 §2.3.1 wants Basic client
/// credentials encoded): everything but RFC 3986's unreserved characters percent-encoded.
/// Public for the Sandbox's dev issuer, which builds its redirects with it.
public enum FormURLEncoding {
    /// `value` with every character but `A-Z a-z 0-9 - . _ ~` percent-encoded.
    public static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
}
