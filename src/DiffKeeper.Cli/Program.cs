using System.Text;
using DiffKeeper.Cli;
using DiffKeeper.Cli.Arguments;
using DiffKeeper.Store;

// diffkeeper: the time-travel CLI over recordings. Every user error becomes one line on stderr and an exit code
// scripts can trust: 0 ok, 1 other, 2 usage, 3 not found, 4 corrupt data, 5 store locked.
var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
int code;
try
{
    code = Verbs.Dispatch(args, stdout);
}
catch (Exception e)
{
    (code, var message) = ErrorMapping.Map(e);
    try { stdout.Flush(); } catch (IOException) { }
    Console.Error.WriteLine("diffkeeper: " + message);
    return code;
}
try { stdout.Flush(); }
catch (IOException) { return 0; }
return code;

namespace DiffKeeper.Cli
{
    internal static class ErrorMapping
    {
        public static (int Code, string Message) Map(Exception e) => e switch
        {
            UsageException => (2, e.Message),
            DiffKeeper.Cli.Setup.SetupException => (1, e.Message),
            NotFoundException => (3, e.Message),
            CorruptDataException => (4, e.Message),
            StoreLockedException => (5, e.Message),
            DiffKeeper.Store.Rocks.RocksException r when r.Message.Contains("Corruption") => (4, "store is corrupt: " + OneLine(r.Message)),
            DiffKeeper.Store.Rocks.RocksException r when DiffKeeper.Store.RecordingStore.IsLockError(r.Message) => (5, OneLine(r.Message)),
            DiffKeeper.Store.Rocks.RocksException r => (1, "store error: " + OneLine(r.Message)),
            UnauthorizedAccessException => (1, OneLine(e.Message)),
            IOException => (1, OneLine(e.Message)),
            _ => (1, "internal error: " + OneLine(e.GetType().Name + ": " + e.Message)),
        };

        private static string OneLine(string s) => s.Replace('\n', ' ').Replace('\r', ' ');
    }
}
