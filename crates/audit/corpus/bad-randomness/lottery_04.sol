pragma solidity ^0.4.24;

// The winner index is computed from values every miner and caller knows.
contract Lottery {
    address[] public players;
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    function enter() public payable {
        require(msg.value == 0.1 ether);
        players.push(msg.sender);
    }

    function draw() public {
        require(msg.sender == owner);
        uint256 index = uint256(keccak256(block.timestamp, block.difficulty)) % players.length; // expect: bad-randomness
        players[index].transfer(this.balance);
        delete players;
    }
}
