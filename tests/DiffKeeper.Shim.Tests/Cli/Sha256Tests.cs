using DiffKeeper.Common.Hashing;
using Xunit;

namespace DiffKeeper.Shim.Tests.Cli;

/// <summary>The shim's own SHA-256 (it avoids loading OpenSSL at start) against the framework's.</summary>
public class Sha256Tests
{
    [Fact]
    public void Matches_the_framework_for_every_length_up_to_300()
    {
        var random = new Random(20261123);
        for (int length = 0; length <= 300; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.True(System.Security.Cryptography.SHA256.HashData(data).AsSpan().SequenceEqual(Sha256.Hash(data)),
                $"length {length}");
        }
    }

    [Theory]
    [InlineData(1 << 20)]
    [InlineData(3 * (1 << 20) + 17)]
    public void Matches_the_framework_for_megabytes(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(data), Sha256.Hash(data));
    }

    [Fact]
    public void Known_vector_abc()
    {
        // FIPS 180-2, appendix B.1.
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            Convert.ToHexStringLower(Sha256.Hash("abc"u8)));
    }
}
