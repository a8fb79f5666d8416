using System.Reflection;
using Xunit;

namespace DiffKeeper.Store.Tests;

/// <summary>
/// The store is one boundary: callers (the daemon, the CLI) get typed operations only. Nothing public hands out
/// RocksDB handles, column families, write options or raw keys, so no caller can write a version that names a
/// chunk which is not durable yet (the rule <c>Ingest.ChunkSink</c> keeps).
/// </summary>
public class BoundaryTests
{
    private static readonly Assembly Store = typeof(RecordingStore).Assembly;

    private static bool Internal(Type t)
    {
        if (t.IsArray || t.IsByRef || t.IsPointer) return Internal(t.GetElementType()!);
        if (t.IsGenericType && t.GetGenericArguments().Any(Internal)) return true;
        if (t.Assembly != Store) return false;
        var ns = t.Namespace ?? "";
        return (ns.EndsWith(".Rocks", StringComparison.Ordinal) && t.Name != "RocksException") || ns.EndsWith(".Serialization", StringComparison.Ordinal);
    }

    [Fact]
    public void No_public_type_or_member_exposes_rocksdb_handles_or_the_key_layout()
    {
        var leaks = new List<string>();
        foreach (var t in Store.GetExportedTypes())
        {
            if (Internal(t)) { leaks.Add(t.FullName!); continue; }
            const BindingFlags all = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var m in t.GetMembers(all))
            {
                IEnumerable<Type> types = m switch
                {
                    FieldInfo f => [f.FieldType],
                    PropertyInfo p => [p.PropertyType],
                    MethodInfo mi => mi.GetParameters().Select(p => p.ParameterType).Append(mi.ReturnType),
                    ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType),
                    _ => [],
                };
                if (types.Any(Internal)) leaks.Add($"{t.Name}.{m.Name}");
                // Raw (key, value) pairs are the key layout by another name.
                if (m is MethodInfo raw && raw.Name.StartsWith("Raw", StringComparison.Ordinal)) leaks.Add($"{t.Name}.{m.Name}");
            }
        }
        Assert.Empty(leaks);
    }

    [Fact]
    public void Chunk_writes_and_version_writes_have_one_owner()
    {
        // Writing chunks, writing version records and making chunks durable are operations of the sink alone (before,
        // the store, the deferred records and the file capture each had a share of the rule).
        var owners = Store.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(m => m.Name is "WriteChunks" or "WriteVersions" or "MakeChunksDurable")
                .Select(m => t.Name))
            .Distinct().ToList();
        Assert.Equal(["ChunkSink"], owners);
    }
}
