namespace DiffKeeper.Store;

/// <summary>Stored or packed data is damaged (a chunk hash mismatch, a truncated record or file).</summary>
public class CorruptDataException(string message) : Exception(message);

/// <summary>A recording, path or moment does not exist.</summary>
public class NotFoundException(string message) : Exception(message);

/// <summary>Another process holds the store's write lock.</summary>
public class StoreLockedException(string message) : Exception(message);

/// <summary>The caller asked for something malformed (bad time, bad option value).</summary>
public class UsageException(string message) : Exception(message);
