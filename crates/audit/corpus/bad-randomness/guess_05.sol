pragma solidity ^0.5.0;

// The answer is derived from the previous block hash, which a calling contract can read.
contract GuessTheNumber {
    constructor() public payable {
        require(msg.value == 1 ether);
    }

    function guess(uint8 n) public payable {
        require(msg.value == 1 ether);
        uint8 answer = uint8(uint256(keccak256(abi.encodePacked(blockhash(block.number - 1), now)))); // expect: bad-randomness
        if (n == answer) {
            msg.sender.transfer(2 ether);
        }
    }
}
