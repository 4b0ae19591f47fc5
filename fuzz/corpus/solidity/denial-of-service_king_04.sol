pragma solidity ^0.4.24;

// A king that rejects ether can never be dethroned.
contract KingOfEther {
    address public king;
    uint256 public prize;

    function claimThrone() public payable {
        require(msg.value > prize);
        king.transfer(prize); // expect: denial-of-service
        king = msg.sender;
        prize = msg.value;
    }
}
